// GET /api/v1/openapi.json: the OpenAPI 3.1 description of every /api/v1 route, built from the
// routes' own zod schemas (so it cannot drift from what they accept); /docs/api renders it, and
// `deno task client:generate` makes client/schema.ts from it. No key needed.
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../../utils/app_env.ts";
import { jsonAnswer, registerBearer, v1App, z } from "./_openapi.ts";

/** Where app.ts mounts the API: the document's paths are full paths under it. */
export const V1_PREFIX = "/api/v1";

export const TITLE = "Tally server-to-server API";
export const VERSION = "1.0.0";

type Document = ReturnType<OpenAPIHono<AppEnv>["getOpenAPI31Document"]>;

/** The document of the routes mounted on v1 (the root app of routes/api/v1/index.ts). */
export function openApiDocument(v1: OpenAPIHono<AppEnv>): Document {
  const document = v1.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: TITLE,
      version: VERSION,
      description: "Credits for the customers of the app that sells them: read, spend, hold and " +
        "grant. Every route but this document takes `Authorization: Bearer <API key>`. Errors " +
        'are `{"error": "<code>", "message": "<text>"}`.',
    },
  });
  const paths = Object.fromEntries(
    Object.entries(document.paths ?? {}).map(([path, item]) => [`${V1_PREFIX}${path}`, item]),
  );
  return { ...document, paths };
}

const OpenApiDocument = z.record(z.string(), z.unknown()).openapi({
  description: "an OpenAPI 3.1 document",
});

/** The sub-app serving the document of v1, built once on first request. */
export function describe(v1: OpenAPIHono<AppEnv>): OpenAPIHono<AppEnv> {
  registerBearer(v1);
  const app = v1App();
  let document: Document | undefined;
  app.openapi(
    createRoute({
      method: "get",
      path: "/openapi.json",
      tags: ["description"],
      summary: "This document",
      security: [],
      responses: { 200: jsonAnswer(OpenApiDocument, "the OpenAPI 3.1 description") },
    }),
    (c) => {
      document ??= openApiDocument(v1);
      return c.json(document as unknown as Record<string, unknown>, 200);
    },
  );
  return app;
}
