// The route a request is named by in logs and metrics: its pattern, never its raw path (which
// carries user, customer and event ids).
import type { Context } from "hono";
import { matchedRoutes } from "hono/route";

/**
 * The pattern of the handler that answered ("/api/v1/customers/:externalId"), or, when a
 * middleware answered first (401, 413...), of the handler the request was routed to; null when
 * no handler matched (a 404). Middleware is registered for every method ("ALL"), handlers for
 * theirs.
 */
export function routePattern(c: Context): string | null {
  const routes = matchedRoutes(c);
  const answering = routes[c.req.routeIndex];
  if (answering && answering.method !== "ALL") return answering.path;
  return routes.find((route) => route.method !== "ALL")?.path ?? null;
}
