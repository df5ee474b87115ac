// GET /metrics: Prometheus text format (docs/api.md#metrics); Bearer METRICS_TOKEN when it is set.
import { Hono } from "hono";
import type { AppEnv } from "../utils/app_env.ts";
import { errorBody, HttpError } from "../utils/errors.ts";
import { sameSecret } from "../utils/secrets.ts";

export const metrics = new Hono<AppEnv>();

metrics.get("/", async (c) => {
  const token = c.var.config.metricsToken;
  if (token !== undefined) {
    const header = c.req.header("Authorization") ?? "";
    const match = /^bearer\s+(.+)$/i.exec(header.trim());
    if (!match || !await sameSecret(match[1], token)) {
      // JSON, as the API answers: /metrics is read by machines, not shown as a page.
      const refused = new HttpError(401, "unauthorized", "missing or wrong metrics token");
      c.header("WWW-Authenticate", 'Bearer realm="metrics"');
      return c.json(errorBody(refused), 401);
    }
  }
  const registry = c.var.metrics.registry;
  return c.body(await c.var.metrics.scrape(), 200, { "Content-Type": registry.contentType });
});
