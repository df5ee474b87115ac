// Builds the Hono application: middleware, every route module, and the one error handler.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Sql } from "./db/client.ts";
import { admin } from "./routes/api/admin.ts";
import { auth } from "./routes/api/auth.ts";
import { billing } from "./routes/api/billing.ts";
import { checkout } from "./routes/api/checkout.ts";
import { cron } from "./routes/api/cron.ts";
import { me } from "./routes/api/me.ts";
import { webhooks } from "./routes/api/webhooks.ts";
import { errorPage, notFoundPage, pages } from "./routes/pages.ts";
import type { AppEnv } from "./utils/app_env.ts";
import { bufferBodies } from "./middlewares/body_reader.ts";
import type { Config } from "./utils/config.ts";
import { refuseCrossSite } from "./middlewares/csrf.ts";
import { errorBody, HttpError, toHttpError } from "./utils/errors.ts";
import { noStorePersonal, securityHeaders } from "./middlewares/security_headers.ts";
import { loadSession } from "./middlewares/session.ts";
import { refuseNulInUrl } from "./utils/validation.ts";

const MAX_API_BODY = 1024 * 1024;

/** JSON errors for the API; everything else is a page and gets the HTML error pages. */
const isApi = (path: string) => path === "/api" || path.startsWith("/api/");

export function createApp(deps: { sql: Sql; config: Config }): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    c.set("sql", deps.sql);
    c.set("config", deps.config);
    await next();
  });
  app.use(securityHeaders);
  app.use(noStorePersonal);
  app.use(refuseNulInUrl);
  app.use(bufferBodies({
    timeoutMs: deps.config.bodyTimeoutMs,
    maxReads: deps.config.maxBodyReads,
    maxBytes: MAX_API_BODY,
  }));
  app.use(
    "/api/*",
    bodyLimit({
      maxSize: MAX_API_BODY,
      onError: () => {
        throw new HttpError(413, "payload_too_large", "the request body is larger than 1 MB");
      },
    }),
  );
  app.use(refuseCrossSite);
  app.use(loadSession);

  app.route("/api/auth", auth);
  app.route("/api/me", me);
  app.route("/api/cron", cron);
  app.route("/api/checkout", checkout);
  app.route("/api/billing", billing);
  app.route("/api/webhooks", webhooks);
  app.route("/api/admin", admin);
  app.route("/", pages);

  app.notFound((c) =>
    isApi(c.req.path)
      ? c.json({ error: "not_found", message: "no such route" }, 404)
      : notFoundPage(c)
  );
  app.onError((error, c) => {
    const http = toHttpError(error);
    for (const [name, value] of Object.entries(http.headers)) c.header(name, value);
    if (!isApi(c.req.path)) return errorPage(c, http);
    return c.json(errorBody(http), http.status);
  });
  return app;
}
