// middlewares/api_key.ts, through a test-only app (nothing is mounted under /api/v1 here yet):
// the bearer key checked by hash on every request, 401 with WWW-Authenticate for a missing,
// malformed, unknown or revoked key, 403 for a read key on anything but GET and HEAD, the key in
// c.var.apiKey; checks arriving together share SQL calls; a revocation through another pool (as
// another server) is effective for the next request; the cross-site check lets bearer requests
// from any origin through.
import assert from "node:assert/strict";
import { Hono } from "hono";
import { connect, type Sql } from "../../db/client.ts";
import { apiKeyCheck, checkApiKeys, requireApiKey } from "../../middlewares/api_key.ts";
import { refuseCrossSite } from "../../middlewares/csrf.ts";
import { notFound, onError } from "../../middlewares/errors.ts";
import { createApiKey, generateApiKey, hashApiKey } from "../../utils/api_keys.ts";
import type { AppEnv } from "../../utils/app_env.ts";
import { createCoalescer } from "../../utils/coalescer.ts";
import { parseConfig } from "../../utils/config.ts";
import { withDatabase } from "../helpers/db.ts";
import { assertError } from "../helpers/http.ts";

const APP_URL = "http://tally.test";

/** A tiny app as the /api/v1 routes will be: the shared middleware, then the key check. */
function probeApp(sql: Sql, check = requireApiKey): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const config = parseConfig({ APP_URL, DATABASE_URL: "postgres://unused/db", SCHEDULER: "off" });
  app.use(async (c, next) => {
    c.set("sql", sql);
    c.set("config", config);
    c.set("user", undefined);
    await next();
  });
  app.use(refuseCrossSite);
  app.use("/api/v1/*", check);
  app.on(["GET", "POST", "DELETE", "PUT", "HEAD"], "/api/v1/probe", (c) => c.json(c.var.apiKey));
  const pages = {
    notFound: () => Promise.resolve(new Response("not found", { status: 404 })),
    error: () => Promise.resolve(new Response("error", { status: 500 })),
  };
  app.notFound(notFound(pages));
  app.onError(onError(pages));
  return app;
}

type Reply = { status: number; json: unknown; headers: Headers };

async function call(
  app: Hono<AppEnv>,
  method: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const response = await app.request(`${APP_URL}/api/v1/probe`, { method, headers });
  const text = await response.text();
  return {
    status: response.status,
    json: text ? JSON.parse(text) : null,
    headers: response.headers,
  };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

Deno.test("requireApiKey: missing, malformed, unknown and revoked keys are 401 with a Bearer challenge", async () => {
  await withDatabase(async ({ sql }) => {
    const app = probeApp(sql);
    const created = await createApiKey(sql, { name: "k", scopes: ["read"], createdBy: null });
    const unknown = generateApiKey();
    const refused: Record<string, string>[] = [
      {},
      { authorization: "" },
      { authorization: `Basic ${btoa("u:p")}` },
      { authorization: "Bearer" },
      bearer("tally_sk_short"),
      bearer(`${created.key}x`),
      bearer(created.key.toUpperCase()),
      bearer(unknown),
      { "x-api-key": created.key },
    ];
    for (const headers of refused) {
      const reply = await call(app, "GET", headers);
      assertError(reply, 401, "unauthorized");
      assert.match(
        reply.headers.get("www-authenticate") ?? "",
        /^Bearer\b/,
        JSON.stringify(headers),
      );
    }
    assert.equal((await call(app, "GET", bearer(created.key))).status, 200);
    // The scheme's case does not matter (RFC 9110).
    assert.equal((await call(app, "GET", { authorization: `bearer ${created.key}` })).status, 200);

    await sql`select app.revoke_api_key(${created.id})`;
    const revoked = await call(app, "GET", bearer(created.key));
    assertError(revoked, 401, "unauthorized");
    assert.equal(revoked.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
  });
});

Deno.test("requireApiKey: a read key reads only (403 on other methods); a write key does both", async () => {
  await withDatabase(async ({ sql }) => {
    const app = probeApp(sql);
    const reader = await createApiKey(sql, { name: "r", scopes: ["read"], createdBy: null });
    const writer = await createApiKey(sql, {
      name: "w",
      scopes: ["read", "write"],
      createdBy: null,
    });
    const get = await call(app, "GET", bearer(reader.key));
    assert.equal(get.status, 200);
    assert.deepEqual(get.json, { id: reader.id, scopes: ["read"] });
    assert.equal((await call(app, "HEAD", bearer(reader.key))).status, 200);
    for (const method of ["POST", "PUT", "DELETE"]) {
      assertError(await call(app, method, bearer(reader.key)), 403, "forbidden");
      const written = await call(app, method, bearer(writer.key));
      assert.equal(written.status, 200, method);
      assert.deepEqual(written.json, { id: writer.id, scopes: ["read", "write"] });
    }
    // The check recorded the use.
    const [row] = await sql<{ used: boolean }[]>`
      select last_used_at is not null as used from app.api_keys where id = ${reader.id}`;
    assert.equal(row.used, true);
  });
});

Deno.test("requireApiKey: a cross-origin POST with a bearer key and no cookie is not refused as cross-site", async () => {
  await withDatabase(async ({ sql }) => {
    const app = probeApp(sql);
    const writer = await createApiKey(sql, {
      name: "w",
      scopes: ["read", "write"],
      createdBy: null,
    });
    const origins: Record<string, string>[] = [
      { origin: "https://evil.example" },
      { "sec-fetch-site": "cross-site" },
      {},
    ];
    for (const extra of origins) {
      const reply = await call(app, "POST", {
        ...bearer(writer.key),
        "content-type": "application/json",
        ...extra,
      });
      assert.equal(reply.status, 200, JSON.stringify({ extra, reply: reply.json }));
    }
    // And without a key, the answer is the key check's 401, not a CSRF 403.
    assertError(await call(app, "POST", { origin: "https://evil.example" }), 401, "unauthorized");
  });
});

Deno.test("requireApiKey: checks arriving together share SQL calls, each request gets its own key", async () => {
  await withDatabase(async ({ sql }) => {
    const keys = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        createApiKey(sql, {
          name: `k${i}`,
          scopes: i % 2 ? ["read", "write"] : ["read"],
          createdBy: null,
        })),
    );
    const batches: number[] = [];
    const lookup = createCoalescer(async (hashes: Uint8Array[]) => {
      batches.push(hashes.length);
      return await checkApiKeys(sql, hashes);
    }, { maxBatch: 500, maxInFlight: 1 });
    const app = probeApp(sql, apiKeyCheck(() => lookup));
    const unknown = generateApiKey();
    const requests = Array.from({ length: 100 }, (_, i) => i % 6 === 5 ? unknown : keys[i % 6].key);
    const replies = await Promise.all(requests.map((key) => call(app, "GET", bearer(key))));
    replies.forEach((reply, i) => {
      if (i % 6 === 5) {
        assertError(reply, 401, "unauthorized");
      } else {
        assert.equal(reply.status, 200);
        assert.deepEqual(reply.json, { id: keys[i % 6].id, scopes: keys[i % 6].scopes });
      }
    });
    assert.equal(batches.reduce((a, b) => a + b, 0), 100);
    assert.ok(batches.length <= 10, `100 checks took ${batches.length} SQL calls: ${batches}`);
  });
});

Deno.test("checkApiKeys: one call answers each hash in order, null for unknown ones", async () => {
  await withDatabase(async ({ sql }) => {
    const key = await createApiKey(sql, { name: "k", scopes: ["read"], createdBy: null });
    const hash = await hashApiKey(key.key);
    const other = await hashApiKey(generateApiKey());
    assert.deepEqual(await checkApiKeys(sql, [other, hash, hash]), [
      null,
      { id: key.id, scopes: ["read"] },
      { id: key.id, scopes: ["read"] },
    ]);
  });
});

Deno.test("requireApiKey: a key revoked through another pool is refused on the next request", async () => {
  await withDatabase(async ({ url }) => {
    // Two pools on one database, as two server processes would have; nothing is cached.
    const first = connect(url, { max: 2 });
    const second = connect(url, { max: 2 });
    try {
      const app = probeApp(second);
      const key = await createApiKey(first, { name: "k", scopes: ["read"], createdBy: null });
      assert.equal((await call(app, "GET", bearer(key.key))).status, 200);
      assert.equal((await call(app, "GET", bearer(key.key))).status, 200);
      await first`select app.revoke_api_key(${key.id})`;
      assertError(await call(app, "GET", bearer(key.key)), 401, "unauthorized");
    } finally {
      await Promise.all([first.end(), second.end()]);
    }
  });
});
