// GET /docs/api: the /api/v1 description (GET /api/v1/openapi.json) rendered for people by
// Swagger UI, whose files (npm swagger-ui-dist) and init script (_api_init.js) Tally serves
// itself: the page loads nothing from another origin and runs no inline script.
import { Hono } from "hono";
import { renderToString } from "preact-render-to-string";
import swaggerUiDir from "swagger-ui-dist/absolute-path.js";
import type { AppEnv } from "../../utils/app_env.ts";
import { HttpError } from "../../utils/errors.ts";
import { staticVersion } from "../../utils/static_files.ts";

/** The files of /docs/api/assets/: where each is read from, and its type. */
const ASSETS: Record<string, { path: () => string; type: string }> = {
  "swagger-ui.css": {
    path: () => `${swaggerUiDir()}/swagger-ui.css`,
    type: "text/css; charset=utf-8",
  },
  "swagger-ui-bundle.js": {
    path: () => `${swaggerUiDir()}/swagger-ui-bundle.js`,
    type: "text/javascript; charset=utf-8",
  },
  "init.js": {
    path: () => new URL("./_api_init.js", import.meta.url).pathname,
    type: "text/javascript; charset=utf-8",
  },
};

const read = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();

function ApiDocsPage(props: { version: string }) {
  const asset = (name: string) => `/docs/api/assets/${name}?v=${props.version}`;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Tally API (/api/v1)</title>
        <link rel="stylesheet" href={asset("swagger-ui.css")} />
      </head>
      <body>
        <p>
          <a href="/">Tally</a> · the server-to-server API ·{" "}
          <a href="/api/v1/openapi.json">openapi.json</a>
        </p>
        <div id="swagger-ui"></div>
        <script src={asset("swagger-ui-bundle.js")}></script>
        <script src={asset("init.js")}></script>
      </body>
    </html>
  );
}

export const apiDocs = new Hono<AppEnv>();

apiDocs.get(
  "/",
  (c) => c.html("<!doctype html>" + renderToString(<ApiDocsPage version={staticVersion()} />)),
);

apiDocs.get("/assets/:name", async (c) => {
  const name = c.req.param("name");
  const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
  if (!asset) throw new HttpError(404, "not_found", "no such file");
  if (!read.has(name)) {
    // A failed read is tried again by the next request.
    read.set(
      name,
      Deno.readFile(asset.path()).catch((error) => {
        read.delete(name);
        throw error;
      }),
    );
  }
  const body = await read.get(name)!;
  return c.body(body, 200, {
    "Content-Type": asset.type,
    "Cache-Control": c.req.query("v") === staticVersion()
      ? "public, max-age=31536000, immutable"
      : "no-cache",
  });
});
