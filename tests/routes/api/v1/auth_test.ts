// The key check of every /api/v1 route, walked from the OpenAPI document: 401 unauthorized
// without a key, with an unknown key and with a revoked one, before any input is read; 403
// forbidden for a read key on anything but GET; the document itself needs no key.
import assert from "node:assert/strict";
import { assertError } from "../../../helpers/http.ts";
import { makeKey, withV1 } from "./_v1.ts";

type Document = { paths: Record<string, Record<string, unknown>> };

/** Every operation of the document with its path made concrete. */
async function operations(call: (m: string, p: string) => Promise<{ json: unknown }>) {
  const document = (await call("GET", "/api/v1/openapi.json")).json as Document;
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.keys(item).map((method) => ({
      method: method.toUpperCase(),
      path: path.replace("{externalId}", "nobody").replace(/\{(id|usageId)\}/, "1"),
    }))
  ).filter((operation) => operation.path !== "/api/v1/openapi.json");
}

Deno.test("every /api/v1 route answers 401 without a key, with an unknown or a revoked key", async () => {
  await withV1(async (v1) => {
    const revoked = await makeKey(v1.admin, ["read", "write"]);
    const deleted = await v1.admin.request("DELETE", `/api/admin/api-keys/${revoked.id}`);
    assert.equal(deleted.status, 204);
    const all = await operations((m, p) => v1.call(m, p, undefined, null));
    assert.ok(all.length >= 13);
    for (const { method, path } of all) {
      // A body that would be refused as invalid: the key is checked first.
      const body = method === "GET" ? undefined : '{"amount": -1}';
      for (
        const [label, key] of [
          ["no key", null],
          ["unknown key", "tally_sk_0000000000000000000000000000000000000000"],
          ["not a key", "hello"],
          ["revoked key", revoked.key],
        ] as const
      ) {
        const answer = await v1.call(method, path, body, key);
        assertError(answer, 401, "unauthorized");
        assert.equal(answer.headers.get("cache-control"), "no-store", `${method} ${path} ${label}`);
      }
    }
  });
});

Deno.test("a read key answers 403 forbidden on every route but GET, and reads with GET", async () => {
  await withV1(async (v1) => {
    const all = await operations((m, p) => v1.call(m, p, undefined, null));
    for (const { method, path } of all) {
      const answer = await v1.call(method, path, method === "GET" ? undefined : "{}", v1.readKey);
      if (method === "GET") {
        // Past the key check: the customer "nobody" does not exist.
        assertError(answer, 404, "customer_not_found");
      } else {
        assertError(answer, 403, "forbidden");
      }
    }
    // The read key reads a customer the write key made.
    assert.equal((await v1.tally.putCustomer("reader_1")).response.status, 201);
    const read = await v1.reader.getCustomer("reader_1");
    assert.equal(read.response.status, 200);
    assert.equal(read.data?.externalId, "reader_1");
    const refused = await v1.reader.consume("reader_1", { amount: 1 });
    assert.equal(refused.response.status, 403);
    assert.equal(refused.error?.error, "forbidden");
  });
});

Deno.test("the document needs no key and carries no cookie requirement", async () => {
  await withV1(async (v1) => {
    const answer = await v1.call("GET", "/api/v1/openapi.json", undefined, null);
    assert.equal(answer.status, 200);
    assert.equal((answer.json as { openapi: string }).openapi, "3.1.0");
    // A bearer POST from another origin, without a cookie, passes the cross-site check.
    const put = await fetch(`${v1.server.baseUrl}/api/v1/customers/from_elsewhere`, {
      method: "PUT",
      headers: {
        authorization: `Bearer ${v1.writeKey}`,
        "content-type": "application/json",
        origin: "https://elsewhere.example",
      },
      body: "{}",
    });
    assert.equal(put.status, 201, await put.text());
  });
});
