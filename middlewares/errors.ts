// The one place where errors become HTTP answers: JSON for the API (utils/errors.ts maps anything
// thrown to an HttpError), and for everything else the HTML pages the app passes in
// (routes/_error.tsx), so that this folder never imports a route.
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import type { AppEnv } from "../utils/app_env.ts";
import { errorBody, type HttpError, toHttpError } from "../utils/errors.ts";

/** JSON errors for the API; everything else is a page and gets the HTML error pages. */
const isApi = (path: string) => path === "/api" || path.startsWith("/api/");

export type ErrorPages = {
  notFound: (c: Context<AppEnv>) => Promise<Response>;
  error: (c: Context<AppEnv>, error: HttpError) => Promise<Response>;
};

export function notFound(pages: ErrorPages): NotFoundHandler<AppEnv> {
  return (c) =>
    isApi(c.req.path)
      ? c.json({ error: "not_found", message: "no such route" }, 404)
      : pages.notFound(c);
}

export function onError(pages: ErrorPages): ErrorHandler<AppEnv> {
  return (error, c) => {
    const http = toHttpError(error, c.var.requestId);
    for (const [name, value] of Object.entries(http.headers)) c.header(name, value);
    if (!isApi(c.req.path)) return pages.error(c, http);
    return c.json(errorBody(http, c.var.requestId), http.status);
  };
}
