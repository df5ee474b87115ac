// POST /api/auth/signup, /api/auth/login, /api/auth/logout (contract section 5).
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../utils/app_env.ts";
import { HttpError } from "../../utils/errors.ts";
import { hashPassword, verifyPassword } from "../../utils/passwords.ts";
import {
  clearSessionCookie,
  newSessionToken,
  sessionKey,
  setSessionCookie,
} from "../../utils/session.ts";
import { jsonBody } from "../../utils/validation.ts";

const email = z.string().trim().toLowerCase().pipe(z.email("not a valid email address")).pipe(
  z.string().max(254),
);
// Long enough for passphrases, short enough that hashing cannot be used to burn CPU.
const password = z.string().max(1024, "at most 1024 characters");

export const SignupBody = z.object({
  email,
  password: password.min(8, "at least 8 characters"),
  name: z.string().trim().max(200).optional(),
});

export const LoginBody = z.object({ email, password: password.min(1, "required") });

export const auth = new Hono<AppEnv>();

auth.post("/signup", async (c) => {
  const body = await jsonBody(c, SignupBody);
  const passwordHash = await hashPassword(body.password);
  const session = await newSessionToken();
  let userId: string;
  try {
    const rows = await c.var.sql<{ id: string }[]>`
      select app.signup(${body.email}, ${passwordHash}, ${body.name ?? ""}, now(),
                        ${session.tokenHash}) as id`;
    userId = rows[0].id;
  } catch (error) {
    if ((error as { code?: string }).code === "23505") {
      throw new HttpError(409, "email_taken", "an account with this email already exists");
    }
    throw error;
  }
  setSessionCookie(c, userId, session.token);
  return c.json({ user: { id: userId, email: body.email } }, 201);
});

auth.post("/login", async (c) => {
  const body = await jsonBody(c, LoginBody);
  const [account] = await c.var.sql<
    { locked_until: Date | null; user_id: string | null; password_hash: string | null }[]
  >`select * from app.login_lookup(${body.email})`;
  if (account.locked_until) {
    const seconds = Math.max(1, Math.ceil((account.locked_until.getTime() - Date.now()) / 1000));
    throw new HttpError(429, "too_many_requests", "too many failed logins; try again later", {
      "Retry-After": String(seconds),
    });
  }
  const ok = await verifyPassword(account.password_hash, body.password);
  if (!ok || !account.user_id) {
    await c.var.sql`select app.login_failed(${body.email})`;
    throw new HttpError(401, "unauthorized", "wrong email or password");
  }
  const session = await newSessionToken();
  await c.var.sql`select app.login_succeeded(${account.user_id}, ${session.tokenHash})`;
  setSessionCookie(c, account.user_id, session.token);
  return c.json({ user: { id: account.user_id, email: body.email } });
});

auth.post("/logout", async (c) => {
  const key = await sessionKey(c);
  if (key) await c.var.sql`select app.close_session(${key.userId}, ${key.tokenHash})`;
  clearSessionCookie(c);
  return c.body(null, 204);
});
