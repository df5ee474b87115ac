// Comparing a presented secret with the configured one without leaking it through timing.
import { timingSafeEqual } from "node:crypto";

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** Constant-time equality that leaks neither content nor length (both sides are hashed). */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  return timingSafeEqual(await digest(given), await digest(expected));
}
