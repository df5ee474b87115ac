// Counts every request for GET /metrics (utils/metrics.ts): by the route pattern it was routed to,
// never the raw path (no user, customer or event id becomes a label), and, for the consume and
// webhook routes, by what they answered. Registered first, so it sees every answer, errors too.
import type { MiddlewareHandler } from "hono";
import { routePattern } from "../utils/route_pattern.ts";
import type { AppEnv } from "../utils/app_env.ts";
import type { Metrics, WebhookResult } from "../utils/metrics.ts";

const CONSUME_ROUTES = new Set([
  "/api/me/credits/consume",
  "/api/v1/customers/:externalId/consume",
]);
const WEBHOOK_ROUTES = new Map([["/api/webhooks/stripe", "stripe"], [
  "/api/webhooks/creem",
  "creem",
]]);
const WEBHOOK_RESULTS = new Set(["processed", "duplicate", "ignored", "failed"]);

async function answerField(response: Response, field: string): Promise<string | undefined> {
  try {
    const body: unknown = await response.clone().json();
    if (body && typeof body === "object" && field in body) {
      const value = (body as Record<string, unknown>)[field];
      return typeof value === "string" ? value : undefined;
    }
  } catch {
    // Not JSON: the caller names it by status.
  }
  return undefined;
}

async function consumeResult(response: Response): Promise<string> {
  if (response.ok) return "ok";
  return await answerField(response, "error") ?? `http_${response.status}`;
}

async function webhookResult(response: Response): Promise<WebhookResult> {
  if (response.status === 400) return "rejected";
  if (!response.ok) return "error";
  const result = await answerField(response, "result");
  return result !== undefined && WEBHOOK_RESULTS.has(result) ? result as WebhookResult : "error";
}

export function recordMetrics(metrics: Metrics): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const route = routePattern(c) ?? "unmatched";
    const method = c.req.method;
    metrics.httpRequests.inc({ method, route, status: String(c.res.status) });
    metrics.httpDuration.observe({ method, route }, (performance.now() - started) / 1000);
    if (CONSUME_ROUTES.has(route)) {
      metrics.consumes.inc({ result: await consumeResult(c.res) });
    }
    const provider = WEBHOOK_ROUTES.get(route);
    if (provider !== undefined) {
      metrics.webhooks.inc({ provider, result: await webhookResult(c.res) });
    }
  };
}
