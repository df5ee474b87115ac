// Sign-up and login, shared by the JSON API (routes/api/auth.ts) and the HTML forms
// (routes/signup.tsx, routes/login.tsx): one implementation of the account rules.
import type { Sql } from "../db/client.ts";
import { HttpError } from "./errors.ts";
import { hashPassword, verifyPassword } from "./passwords.ts";
import { newSessionToken } from "./session_token.ts";

export type SignedIn = { userId: string; token: string };

/** Where a sign-up comes from, for SIGNUP_LIMIT_PER_HOUR (0: no limit). */
export type SignupSource = { address: string | null; limitPerHour: number };

/**
 * Creates the account with its starting credits and a session; 409 email_taken when in use,
 * 429 (SQLSTATE AC001, mapped by toHttpError) when the address has made its sign-ups of the hour,
 * 503 when password hashing is at its bound.
 */
export async function createAccount(
  sql: Sql,
  input: { email: string; password: string; name?: string },
  source: SignupSource,
): Promise<SignedIn> {
  // Refused before the password is hashed, so that a flood costs no hashing; app.signup checks
  // again under the address's lock, which is what holds against sign-ups arriving together.
  await sql`select app.signup_check_limit(${source.address}::inet, ${source.limitPerHour})`;
  const passwordHash = await hashPassword(input.password);
  const session = await newSessionToken();
  try {
    const rows = await sql<{ id: string }[]>`
      select app.signup(${input.email}, ${passwordHash}, ${input.name ?? ""}, now(),
                        ${session.tokenHash}, ${source.address}::inet,
                        ${source.limitPerHour}) as id`;
    return { userId: rows[0].id, token: session.token };
  } catch (error) {
    if ((error as { code?: string }).code === "23505") {
      throw new HttpError(409, "email_taken", "an account with this email already exists");
    }
    throw error;
  }
}

/**
 * Checks the password and opens a session; 401 for a wrong pair, 429 while the email is locked
 * or has its attempts of the window in flight, 503 when password hashing is at its bound.
 */
export async function logIn(
  sql: Sql,
  input: { email: string; password: string },
): Promise<SignedIn> {
  // One step records the attempt and checks the limit: only admitted attempts check a password.
  const [attempt] = await sql<
    {
      attempt_id: string | null;
      locked_until: Date | null;
      user_id: string | null;
      password_hash: string | null;
    }[]
  >`select * from app.login_begin(${input.email})`;
  if (!attempt.attempt_id) {
    const until = attempt.locked_until?.getTime() ?? Date.now();
    const seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
    throw new HttpError(429, "too_many_requests", "too many failed logins; try again later", {
      "Retry-After": String(seconds),
    });
  }
  let ok: boolean;
  try {
    ok = await verifyPassword(attempt.password_hash, input.password);
  } catch (error) {
    // No password was checked (hashing is at its bound): the attempt does not count.
    await sql`select app.login_abandoned(${attempt.attempt_id})`;
    throw error;
  }
  if (!ok || !attempt.user_id) {
    await sql`select app.login_failed(${input.email}, ${attempt.attempt_id})`;
    throw new HttpError(401, "unauthorized", "wrong email or password");
  }
  const session = await newSessionToken();
  await sql`select app.login_succeeded(${attempt.user_id}, ${session.tokenHash})`;
  return { userId: attempt.user_id, token: session.token };
}
