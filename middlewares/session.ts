// Session cookies: "<user id>.<random token>". The database keeps only SHA-256(token); the user id
// lets the lookup go straight to the user's rows (and to the right shard, docs/scaling.md).
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { AppEnv } from "../utils/app_env.ts";
import { HttpError } from "../utils/errors.ts";

export const SESSION_COOKIE = "tally_session";
const SESSION_SECONDS = 30 * 24 * 3600;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** verified: the user's email address is verified (contract section 5). */
export type SessionUser = { id: string; email: string; verified: boolean };

export type NewSession = { token: string; tokenHash: Uint8Array };

export async function newSessionToken(): Promise<NewSession> {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replaceAll("=", "");
  return { token, tokenHash: await sha256(token) };
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

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
export async function sessionKey(
  c: Context<AppEnv>,
): Promise<{ userId: string; tokenHash: Uint8Array } | null> {
  const value = getCookie(c, SESSION_COOKIE);
  if (!value) return null;
  const dot = value.indexOf(".");
  const userId = value.slice(0, dot);
  const token = value.slice(dot + 1);
  if (dot < 0 || !UUID.test(userId) || token.length < 20 || token.length > 100) return null;
  return { userId, tokenHash: await sha256(token) };
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

export function currentUser(c: Context<AppEnv>): SessionUser {
  const user = c.var.user;
  if (!user) throw new HttpError(401, "unauthorized", "sign in first");
  return user;
}

/**
 * The one admin check, for the admin pages and the admin API: a signed-in user whose address is
 * in ADMIN_EMAILS and verified. Whoever signs up first with an admin's address gets nothing
 * from it until the address is verified.
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
