// Every HTML page and the static assets, mounted at / by utils/app.ts.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../utils/app_env.ts";
import { HttpError } from "../utils/errors.ts";
import { serveIsland, serveStatic } from "../utils/static_files.ts";
import { admin } from "./admin/index.tsx";
import { authPages } from "./auth_pages.tsx";
import { billingPages } from "./billing.tsx";
import { checkoutPages } from "./checkout_success.tsx";
import { dashboard } from "./dashboard.tsx";
import { home } from "./index.tsx";

export { errorPage, notFoundPage } from "./error_pages.tsx";

export const pages = new Hono<AppEnv>();

// The pages' forms are a few short fields.
pages.use(bodyLimit({
  maxSize: 64 * 1024,
  onError: () => {
    throw new HttpError(413, "payload_too_large", "the form is larger than 64 KB");
  },
}));
pages.get("/static/:name", serveStatic);
pages.get("/static/islands/:name", serveIsland);
pages.route("/", home);
pages.route("/", authPages);
pages.route("/", dashboard);
pages.route("/", billingPages);
pages.route("/", checkoutPages);
pages.route("/admin", admin);
