// Cross-site request forgery (contract section 5): a state-changing request that carries the
// session cookie must come from APP_URL's origin. Without an Origin header, Sec-Fetch-Site
// decides; requests with neither (curl, server-to-server) pass, as they cannot ride a browser's
// cookie unseen.
import type { MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import type { AppEnv } from "./app_env.ts";
import { HttpError } from "./errors.ts";
import { SESSION_COOKIE } from "./session.ts";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export const refuseCrossSite: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!SAFE_METHODS.has(c.req.method) && getCookie(c, SESSION_COOKIE) !== undefined) {
    const origin = c.req.header("Origin");
    const crossSite = origin !== undefined
      ? origin !== c.var.config.appOrigin
      : c.req.header("Sec-Fetch-Site") === "cross-site";
    if (crossSite) {
      throw new HttpError(403, "forbidden", "cross-site request refused");
    }
  }
  await next();
};
