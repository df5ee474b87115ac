// The session on every request: the cookie (utils/session_token.ts for its format), c.var.user,
// and the checks that a route needs a signed-in user.
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { AppEnv, SessionUser } from "../utils/app_env.ts";
import { HttpError } from "../utils/errors.ts";
import { parseSessionCookie, SESSION_COOKIE } from "../utils/session_token.ts";

export type { SessionUser } from "../utils/app_env.ts";

const SESSION_SECONDS = 30 * 24 * 3600;

export function setSessionCookie(c: Context<AppEnv>, userId: string, token: string): void {
  setCookie(c, SESSION_COOKIE, `${userId}.${token}`, {
    httpOnly: true,
    sameSite: "Lax",
    secure: c.var.config.secureCookies,
    path: "/",
    maxAge: SESSION_SECONDS,
  });
}

export function clearSessionCookie(c: Context<AppEnv>): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: c.var.config.secureCookies });
}

/** The (user id, token hash) pair a request's cookie names, if it is well formed. */
export function sessionKey(
  c: Context<AppEnv>,
): Promise<{ userId: string; tokenHash: Uint8Array } | null> {
  return parseSessionCookie(getCookie(c, SESSION_COOKIE));
}

/** Logging out, for the API and the form: closes the cookie's session and clears the cookie. */
export async function endSession(c: Context<AppEnv>): Promise<void> {
  const key = await sessionKey(c);
  if (key) await c.var.sql`select app.close_session(${key.userId}, ${key.tokenHash})`;
  clearSessionCookie(c);
}

/** Looks up the session, renews it when due, and sets c.var.user (or leaves it undefined). */
export const loadSession: MiddlewareHandler<AppEnv> = async (c, next) => {
  const key = await sessionKey(c);
  if (key) {
    const rows = await c.var.sql<
      { id: string; email: string; renewed_until: Date | null; verified: boolean }[]
    >`select id, email, renewed_until, verified
        from app.session_user(${key.userId}, ${key.tokenHash})`;
    const row = rows[0];
    if (row) {
      c.set("user", { id: row.id, email: row.email, verified: row.verified });
      if (row.renewed_until) {
        const cookie = getCookie(c, SESSION_COOKIE) ?? "";
        setSessionCookie(c, key.userId, cookie.slice(cookie.indexOf(".") + 1));
      }
    }
  }
  await next();
};

/** For API routes that need a signed-in user: 401 without one. */
export const requireUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!c.var.user) throw new HttpError(401, "unauthorized", "sign in first");
  await next();
};

/** Pages that need a signed-in user send a signed-out visitor to /login, and back afterwards. */
export const requirePageUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!c.var.user) {
    const url = new URL(c.req.url);
    return c.redirect(`/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
  }
  await next();
};

export function currentUser(c: Context<AppEnv>): SessionUser {
  const user = c.var.user;
  if (!user) throw new HttpError(401, "unauthorized", "sign in first");
  return user;
}
