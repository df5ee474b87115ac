// GET /api/v1/openapi.json: a valid OpenAPI 3.1 document (checked by @readme/openapi-parser,
// offline) that describes every /api/v1 route the app serves, with the same method, the bearer
// scheme on every route but itself, and the shared error schema on every error answer.
import assert from "node:assert/strict";
import { validate } from "@readme/openapi-parser";
import { createApp } from "../../../../app.ts";
import { parseConfig } from "../../../../utils/config.ts";
import { send, withApp } from "../../../helpers/http.ts";

type Operation = {
  security?: Record<string, string[]>[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
};
type Document = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string; scheme: string }> };
};

const METHODS = ["get", "put", "post", "delete", "patch"];

async function fetchDocument(): Promise<Document> {
  return await withApp(async (server) => {
    const answer = await send(server.baseUrl, "GET", "/api/v1/openapi.json");
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get("content-type") ?? "", /application\/json/);
    return answer.json as Document;
  });
}

Deno.test("the document is valid OpenAPI 3.1 with a title, a version and the bearer scheme", async () => {
  const document = await fetchDocument();
  assert.equal(document.openapi, "3.1.0");
  assert.equal(document.info.title, "Tally server-to-server API");
  assert.ok(document.info.version.length > 0);
  assert.deepEqual(document.components.securitySchemes.bearerAuth, {
    ...document.components.securitySchemes.bearerAuth,
    type: "http",
    scheme: "bearer",
  });
  const result = await validate(structuredClone(document) as never);
  assert.deepEqual(result, { valid: true, warnings: [], specification: "OpenAPI" });

  // The check is a real one: a broken document is refused.
  const broken = structuredClone(document);
  (broken.paths["/api/v1/usage/batch"].post as unknown as { responses: number }).responses = 5;
  assert.equal((await validate(broken as never)).valid, false);
});

Deno.test("every /api/v1 route of the app is in the document with its method, and no other", async () => {
  const document = await fetchDocument();
  const app = createApp({
    sql: null as never,
    config: parseConfig({ APP_URL: "http://localhost:8000", DATABASE_URL: "postgres://x/y" }),
  });
  const served = new Set(
    app.routes
      .filter((route) =>
        route.path.startsWith("/api/v1/") && METHODS.includes(route.method.toLowerCase())
      )
      .map((route) => `${route.method.toLowerCase()} ${route.path.replace(/:([^/]+)/g, "{$1}")}`),
  );
  const described = new Set(
    Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).filter((key) => METHODS.includes(key)).map((method) => `${method} ${path}`)
    ),
  );
  assert.ok(served.size >= 14, `only ${served.size} routes found: ${[...served]}`);
  assert.deepEqual([...served].sort(), [...described].sort());
});

Deno.test("every route but the document needs the key; every error answer has the error schema", async () => {
  const document = await fetchDocument();
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!METHODS.includes(method)) continue;
      const where = `${method} ${path}`;
      if (path === "/api/v1/openapi.json") {
        assert.deepEqual(operation.security, [], where);
        continue;
      }
      assert.deepEqual(operation.security, [{ bearerAuth: [] }], where);
      const statuses = Object.keys(operation.responses);
      for (const status of ["400", "401", "500", "503"]) {
        assert.ok(statuses.includes(status), `${where} ${status}`);
      }
      for (const status of operation.requestBody ? ["408", "413"] : []) {
        assert.ok(statuses.includes(status), `${where} ${status}`);
      }
      if (method !== "get") assert.ok(statuses.includes("403"), `${where} 403`);
      // PUT creates the customer; every other customer route answers 404 for an unknown one.
      if (path.startsWith("/api/v1/customers/") && method !== "put") {
        assert.ok(statuses.includes("404"), `${where} 404`);
      }
      for (const status of statuses.filter((status) => Number(status) >= 400)) {
        assert.equal(
          operation.responses[status].content?.["application/json"]?.schema?.$ref,
          "#/components/schemas/Error",
          `${where} ${status}`,
        );
      }
      if (method !== "get" && !path.endsWith("/release") && !path.endsWith("/portal")) {
        assert.ok(operation.requestBody, `${where} has no request body`);
      }
    }
  }
});
