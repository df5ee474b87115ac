// Password hashing: argon2id with the library's defaults (OWASP's minimum: 19 MiB, t=2, p=1).
// Hashing is bounded: at most HASHING_AT_ONCE hashes run together and HASHING_WAITING more may
// wait; beyond that a request is turned away with 503 and Retry-After, so that a burst of
// sign-ups or logins (with passwords of up to 1,024 characters) cannot grow memory or latency
// without bound.
import { hash, verify } from "@node-rs/argon2";
import pLimit from "p-limit";
import { HttpError } from "./errors.ts";

// Algorithm.Argon2id; the package exports it as an ambient const enum, which Deno cannot read.
const ARGON2ID = 2;

/** Hashes computed at once (each holds 19 MiB while it runs). */
export const HASHING_AT_ONCE = 4;
/** Hashes that may wait for a free slot; one more answers 503. */
export const HASHING_WAITING = 16;
const RETRY_AFTER_SECONDS = "1";

const hashing = pLimit(HASHING_AT_ONCE);

/** Runs one hash under the bound, or refuses with 503 when the bound is full. */
function bounded<T>(work: () => Promise<T>): Promise<T> {
  if (hashing.activeCount + hashing.pendingCount >= HASHING_AT_ONCE + HASHING_WAITING) {
    return Promise.reject(
      new HttpError(503, "unavailable", "the server is busy; try again shortly", {
        "Retry-After": RETRY_AFTER_SECONDS,
      }),
    );
  }
  return hashing(work);
}

export function hashPassword(password: string): Promise<string> {
  return bounded(() => hash(password, { algorithm: ARGON2ID }));
}

// Verified against when the email has no account, so that a login takes as long either way.
// Made once, outside the bound, so that a refusal is never remembered as the decoy.
let decoy: Promise<string> | undefined;

/** Checks a password (a decoy hash when the account is unknown); 503 when hashing is full. */
export async function verifyPassword(
  storedHash: string | null,
  password: string,
): Promise<boolean> {
  if (!storedHash) {
    decoy ??= hash("decoy password for unknown accounts", { algorithm: ARGON2ID });
    const decoyHash = await decoy;
    await bounded(() => verify(decoyHash, password).catch(() => false));
    return false;
  }
  return await bounded(() => verify(storedHash, password).catch(() => false));
}
