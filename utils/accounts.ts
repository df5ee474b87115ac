// Sign-up and login, shared by the JSON API (routes/api/auth.ts) and the HTML forms
// (routes/signup.tsx, routes/login.tsx): one implementation of the account rules.
import type { Sql } from "../db/client.ts";
import { HttpError } from "./errors.ts";
import { hashPassword, verifyPassword } from "./passwords.ts";
import { newSessionToken } from "./session.ts";

export type SignedIn = { userId: string; token: string };

/** Creates the account with its starting credits and a session; 409 email_taken when in use. */
export async function createAccount(
  sql: Sql,
  input: { email: string; password: string; name?: string },
): Promise<SignedIn> {
  const passwordHash = await hashPassword(input.password);
  const session = await newSessionToken();
  try {
    const rows = await sql<{ id: string }[]>`
      select app.signup(${input.email}, ${passwordHash}, ${input.name ?? ""}, now(),
                        ${session.tokenHash}) as id`;
    return { userId: rows[0].id, token: session.token };
  } catch (error) {
    if ((error as { code?: string }).code === "23505") {
      throw new HttpError(409, "email_taken", "an account with this email already exists");
    }
    throw error;
  }
}

/** Checks the password and opens a session; 401 for a wrong pair, 429 while the email is locked. */
export async function logIn(
  sql: Sql,
  input: { email: string; password: string },
): Promise<SignedIn> {
  const [account] = await sql<
    { locked_until: Date | null; user_id: string | null; password_hash: string | null }[]
  >`select * from app.login_lookup(${input.email})`;
  if (account.locked_until) {
    const seconds = Math.max(1, Math.ceil((account.locked_until.getTime() - Date.now()) / 1000));
    throw new HttpError(429, "too_many_requests", "too many failed logins; try again later", {
      "Retry-After": String(seconds),
    });
  }
  const ok = await verifyPassword(account.password_hash, input.password);
  if (!ok || !account.user_id) {
    await sql`select app.login_failed(${input.email})`;
    throw new HttpError(401, "unauthorized", "wrong email or password");
  }
  const session = await newSessionToken();
  await sql`select app.login_succeeded(${account.user_id}, ${session.tokenHash})`;
  return { userId: account.user_id, token: session.token };
}
