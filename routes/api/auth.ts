// POST /api/auth/signup, /api/auth/login, /api/auth/logout (contract section 5).
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../utils/app_env.ts";
import { createAccount, logIn } from "../../utils/accounts.ts";
import { signupSource } from "../../utils/client_address.ts";
import { clearSessionCookie, sessionKey, setSessionCookie } from "../../middlewares/session.ts";
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
  const { userId, token } = await createAccount(c.var.sql, body, signupSource(c));
  setSessionCookie(c, userId, token);
  return c.json({ user: { id: userId, email: body.email } }, 201);
});

auth.post("/login", async (c) => {
  const body = await jsonBody(c, LoginBody);
  const { userId, token } = await logIn(c.var.sql, body);
  setSessionCookie(c, userId, token);
  return c.json({ user: { id: userId, email: body.email } });
});

auth.post("/logout", async (c) => {
  const key = await sessionKey(c);
  if (key) await c.var.sql`select app.close_session(${key.userId}, ${key.tokenHash})`;
  clearSessionCookie(c);
  return c.body(null, 204);
});
