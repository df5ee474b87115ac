// The one admin check, for the admin pages (routes/admin/) and the admin API (routes/api/admin.ts).
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../utils/app_env.ts";
import { HttpError } from "../utils/errors.ts";

/**
 * A signed-in user whose address is in ADMIN_EMAILS and verified. Whoever signs up first with an
 * admin's address gets nothing from it until the address is verified.
 */
export function isAdmin(c: Context<AppEnv>): boolean {
  const user = c.var.user;
  return user !== undefined && user.verified &&
    c.var.config.adminEmails.has(user.email.toLowerCase());
}

/** The admin routes do not exist for anyone else: 404, not 403, so they reveal nothing. */
export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!isAdmin(c)) throw new HttpError(404, "not_found", "not found");
  await next();
};
