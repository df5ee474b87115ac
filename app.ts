// Builds the Hono application from the route modules: the middleware every request passes
// (middlewares/), each route module at its URL (routes/, named as Fresh names file routes), and
// the one error handler. main.ts only starts it; the tests build it the same way.
import { Hono } from "hono";
import type { Sql } from "./db/client.ts";
import { bufferBodies } from "./middlewares/body_reader.ts";
import { refuseCrossSite } from "./middlewares/csrf.ts";
import { notFound, onError } from "./middlewares/errors.ts";
import { recordMetrics } from "./middlewares/metrics.ts";
import { refuseNulInUrl } from "./middlewares/nul.ts";
import { logRequests } from "./middlewares/request_log.ts";
import { noStorePersonal, securityHeaders } from "./middlewares/security_headers.ts";
import { loadSession } from "./middlewares/session.ts";
import { errorPage, notFoundPage } from "./routes/_error.tsx";
import { adminApiKeys } from "./routes/admin/api-keys.tsx";
import { admin as adminPage } from "./routes/admin/index.tsx";
import { adminUser } from "./routes/admin/users/[id].tsx";
import { admin } from "./routes/api/admin.ts";
import { auth } from "./routes/api/auth.ts";
import { billing } from "./routes/api/billing.ts";
import { checkout } from "./routes/api/checkout.ts";
import { cron } from "./routes/api/cron.ts";
import { me } from "./routes/api/me.ts";
import { v1 } from "./routes/api/v1/index.ts";
import { webhooks } from "./routes/api/webhooks.ts";
import { billingPages } from "./routes/billing.tsx";
import { checkoutStart } from "./routes/checkout/start.tsx";
import { checkoutSuccess } from "./routes/checkout/success.tsx";
import { dashboard } from "./routes/dashboard.tsx";
import { apiDocs } from "./routes/docs/api.tsx";
import { home } from "./routes/index.tsx";
import { login } from "./routes/login.tsx";
import { logout } from "./routes/logout.ts";
import { metrics as metricsRoute } from "./routes/metrics.ts";
import { signup } from "./routes/signup.tsx";
import type { AppEnv } from "./utils/app_env.ts";
import type { Config } from "./utils/config.ts";
import { createMetrics } from "./utils/metrics.ts";
import { serveIsland, serveStatic } from "./utils/static_files.ts";

const MAX_API_BODY = 1024 * 1024;
// The pages' forms are a few short fields.
const MAX_FORM_BODY = 64 * 1024;

/** Every HTML page and the static assets, mounted at /. */
function pages(): Hono<AppEnv> {
  const pages = new Hono<AppEnv>();
  pages.get("/static/:name", serveStatic);
  pages.get("/static/islands/:name", serveIsland);
  pages.route("/", home);
  pages.route("/", signup);
  pages.route("/", login);
  pages.route("/", logout);
  pages.route("/", dashboard);
  pages.route("/", billingPages);
  pages.route("/", checkoutStart);
  pages.route("/", checkoutSuccess);
  pages.route("/admin", adminPage);
  pages.route("/admin/users", adminUser);
  pages.route("/admin/api-keys", adminApiKeys);
  pages.route("/docs/api", apiDocs);
  return pages;
}

export function createApp(deps: { sql: Sql; config: Config }): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const metrics = createMetrics(deps.sql);

  // First: the request id and the request's log line, then the metrics, which time and count
  // every answer, the other middleware's refusals too.
  app.use(logRequests);
  app.use(recordMetrics(metrics));
  app.use(async (c, next) => {
    c.set("sql", deps.sql);
    c.set("config", deps.config);
    c.set("metrics", metrics);
    await next();
  });
  app.use(securityHeaders);
  app.use(noStorePersonal);
  app.use(refuseNulInUrl);
  app.use(bufferBodies({
    timeoutMs: deps.config.bodyTimeoutMs,
    maxReads: deps.config.maxBodyReads,
    maxBytes: MAX_API_BODY,
    maxFormBytes: MAX_FORM_BODY,
  }));
  app.use(refuseCrossSite);
  app.use(loadSession);

  app.route("/api/auth", auth);
  app.route("/api/me", me);
  app.route("/api/cron", cron);
  app.route("/api/checkout", checkout);
  app.route("/api/billing", billing);
  app.route("/api/webhooks", webhooks);
  app.route("/api/admin", admin);
  app.route("/api/v1", v1);
  app.route("/metrics", metricsRoute);
  app.route("/", pages());

  const errorPages = { notFound: notFoundPage, error: errorPage };
  app.notFound(notFound(errorPages));
  app.onError(onError(errorPages));
  return app;
}
