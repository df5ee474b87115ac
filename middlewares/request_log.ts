// Gives every request an id (the caller's X-Request-Id when it is safe to echo, else a new UUID),
// sends it back as X-Request-Id, and writes one line per request when it is answered: the route
// pattern (never the raw path, which carries ids), status, duration and who asked.
import type { MiddlewareHandler } from "hono";
import { routePattern } from "../utils/route_pattern.ts";
import type { AppEnv } from "../utils/app_env.ts";
import { log, type LogLevel } from "../utils/log.ts";

/** What a caller may choose as its request id: it is echoed in a header and in logs. */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:@\/+=-]{1,128}$/;

export function requestIdFrom(given: string | undefined): string {
  return given !== undefined && SAFE_REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

function levelOf(status: number): LogLevel {
  return status >= 500 ? "error" : "info";
}

export const logRequests: MiddlewareHandler<AppEnv> = async (c, next) => {
  const started = performance.now();
  const requestId = requestIdFrom(c.req.header("X-Request-Id"));
  c.set("requestId", requestId);
  try {
    await next();
  } finally {
    // Hono has answered by now (its error handler turns a throw into c.res).
    try {
      c.res.headers.set("X-Request-Id", requestId);
    } catch {
      // A response with immutable headers (a fetched one) is copied once.
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set("X-Request-Id", requestId);
    }
    const status = c.res.status;
    log(levelOf(status), "request", {
      requestId,
      method: c.req.method,
      route: routePattern(c),
      status,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      userId: c.var.user?.id,
      apiKeyId: c.var.apiKey?.id,
    });
  }
};
