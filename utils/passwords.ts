// Password hashing: argon2id with the library's defaults (OWASP's minimum: 19 MiB, t=2, p=1).
import { hash, verify } from "@node-rs/argon2";

// Algorithm.Argon2id; the package exports it as an ambient const enum, which Deno cannot read.
const ARGON2ID = 2;

export function hashPassword(password: string): Promise<string> {
  return hash(password, { algorithm: ARGON2ID });
}

// Verified against when the email has no account, so that a login takes as long either way.
let decoy: Promise<string> | undefined;

export async function verifyPassword(
  storedHash: string | null,
  password: string,
): Promise<boolean> {
  if (!storedHash) {
    decoy ??= hashPassword("decoy password for unknown accounts");
    await verify(await decoy, password).catch(() => false);
    return false;
  }
  return await verify(storedHash, password).catch(() => false);
}
