// POST /logout: the navigation's "Log out" form. Closes the session as POST /api/auth/logout does,
// then back to the home page.
import { Hono } from "hono";
import { endSession } from "../middlewares/session.ts";
import type { AppEnv } from "../utils/app_env.ts";

export const logout = new Hono<AppEnv>();

logout.post("/logout", async (c) => {
  await endSession(c);
  return c.redirect("/", 303);
});
