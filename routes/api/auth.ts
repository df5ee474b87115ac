// POST /api/auth/signup, /api/auth/login, /api/auth/logout (docs/api.md#accounts-and-sessions).
import { Hono } from "hono";
import type { AppEnv } from "../../utils/app_env.ts";
import { createAccount, logIn } from "../../utils/accounts.ts";
import { signupSource } from "../../utils/client_address.ts";
import { endSession, setSessionCookie } from "../../middlewares/session.ts";
import { LoginBody, SignupBody } from "../../utils/schemas.ts";
import { jsonBody } from "../../utils/validation.ts";

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
  await endSession(c);
  return c.body(null, 204);
});
