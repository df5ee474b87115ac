// POST/GET/DELETE /api/admin/api-keys (docs/api.md#keys): admins only (as every admin route, 404
// for anyone else, signed in or not), the key shown once in the POST's answer and never listed,
// only its SHA-256 stored, revocation by id.
import assert from "node:assert/strict";
import { verifyEmail } from "../../helpers/db.ts";
import { assertError, send, signedUp, withApp } from "../../helpers/http.ts";
import type { Client, TestServer } from "../../helpers/server.ts";

const ADMIN = "keys-admin@test.local";
const ENV = { ADMIN_EMAILS: ADMIN };

type Created = { id: number; name: string; scopes: string[]; key: string; createdAt: string };
type Listed = {
  id: number;
  name: string;
  scopes: string[];
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
};

const encodeHex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

async function admin(server: TestServer): Promise<Client> {
  const { client } = await signedUp(server, ADMIN);
  await verifyEmail(server.db.sql, ADMIN);
  return client;
}

Deno.test("api-keys: only an admin reaches them; everyone else gets 404 and no key is made", async () => {
  await withApp(async (server) => {
    const body = JSON.stringify({ name: "k", scopes: ["read"] });
    const headers = { "content-type": "application/json" };
    // No session at all.
    assertError(
      await send(server.baseUrl, "POST", "/api/admin/api-keys", { body, headers }),
      404,
      "not_found",
    );
    assertError(await send(server.baseUrl, "GET", "/api/admin/api-keys"), 404, "not_found");
    assertError(await send(server.baseUrl, "DELETE", "/api/admin/api-keys/1"), 404, "not_found");
    // Signed in, not an admin; and the admin's address before it is verified.
    const { client: user } = await signedUp(server);
    const { client: unverified } = await signedUp(server, ADMIN);
    for (const client of [user, unverified]) {
      assertError(
        await client.request("POST", "/api/admin/api-keys", { name: "k", scopes: ["read"] }),
        404,
        "not_found",
      );
      assertError(await client.request("GET", "/api/admin/api-keys"), 404, "not_found");
    }
    const [row] = await server.db.sql<{ n: number }[]>`select count(*)::int as n from app.api_keys`;
    assert.equal(row.n, 0);
    // Once verified, the same session is an admin's.
    await verifyEmail(server.db.sql, ADMIN);
    assert.equal((await unverified.request("GET", "/api/admin/api-keys")).status, 200);
  }, ENV);
});

Deno.test("api-keys: the key is in the 201 answer only; the list and the database never hold it", async () => {
  await withApp(async (server) => {
    const client = await admin(server);
    const made = await client.request("POST", "/api/admin/api-keys", {
      name: " Backend ",
      scopes: ["read", "write"],
    });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const created = made.json as Created;
    assert.deepEqual(Object.keys(created).sort(), ["createdAt", "id", "key", "name", "scopes"]);
    assert.equal(created.name, "Backend");
    assert.deepEqual(created.scopes, ["read", "write"]);
    assert.match(created.key, /^tally_sk_[A-Za-z0-9_-]{43}$/);
    const reader = (await client.request("POST", "/api/admin/api-keys", {
      name: "reader",
      scopes: ["read"],
    })).json as Created;
    assert.notEqual(reader.key, created.key);

    const listed = await client.request("GET", "/api/admin/api-keys");
    assert.equal(listed.status, 200);
    const { items } = listed.json as { items: Listed[] };
    assert.deepEqual(items.map((k) => k.id), [reader.id, created.id]);
    assert.deepEqual(items[1], {
      id: created.id,
      name: "Backend",
      scopes: ["read", "write"],
      prefix: created.key.slice(0, 13),
      createdAt: created.createdAt,
      lastUsedAt: null,
      revokedAt: null,
    });
    const secret = created.key.slice(13);
    assert.ok(!JSON.stringify(listed.json).includes(secret), "the list shows the key");

    // Stored: the SHA-256 of the whole key, and nothing else of its secret part.
    const sha = encodeHex(
      new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(created.key))),
    );
    const [row] = await server.db.sql<{ hash: string; everything: string; created_by: string }[]>`
      select encode(k.key_hash, 'hex') as hash, to_jsonb(k)::text as everything, k.created_by
        from app.api_keys k where k.id = ${created.id}`;
    assert.equal(row.hash, sha);
    assert.ok(!row.everything.includes(secret), row.everything);
    const [user] = await server.db.sql<{ id: string }[]>`
      select id from app.users where email = ${ADMIN}`;
    assert.equal(row.created_by, user.id);
  }, ENV);
});

Deno.test("api-keys: bad bodies are 400 and make nothing", async () => {
  await withApp(async (server) => {
    const client = await admin(server);
    for (
      const body of [
        {},
        { name: "k" },
        { scopes: ["read"] },
        { name: "", scopes: ["read"] },
        { name: "   ", scopes: ["read"] },
        { name: "x".repeat(101), scopes: ["read"] },
        { name: "k", scopes: [] },
        { name: "k", scopes: ["write"] },
        { name: "k", scopes: ["write", "read"] },
        { name: "k", scopes: ["read", "read"] },
        { name: "k", scopes: ["read", "admin"] },
        { name: "k", scopes: "read" },
        { name: 5, scopes: ["read"] },
        { name: "k", scopes: ["read"], key: "tally_sk_mine" },
      ]
    ) {
      assertError(
        await client.request("POST", "/api/admin/api-keys", body),
        400,
        "invalid_request",
      );
    }
    assertError(
      await client.request("POST", "/api/admin/api-keys", "{not json"),
      400,
      "invalid_json",
    );
    const [row] = await server.db.sql<{ n: number }[]>`select count(*)::int as n from app.api_keys`;
    assert.equal(row.n, 0);
    const longest = await client.request("POST", "/api/admin/api-keys", {
      name: "x".repeat(100),
      scopes: ["read"],
    });
    assert.equal(longest.status, 201);
  }, ENV);
});

Deno.test("api-keys: DELETE revokes (204, again 204, the first revokedAt kept); unknown ids are 404", async () => {
  await withApp(async (server) => {
    const client = await admin(server);
    const created = (await client.request("POST", "/api/admin/api-keys", {
      name: "k",
      scopes: ["read"],
    })).json as Created;
    const revoked = await client.request("DELETE", `/api/admin/api-keys/${created.id}`);
    assert.equal(revoked.status, 204);
    assert.equal(revoked.json, null);
    const first = ((await client.request("GET", "/api/admin/api-keys")).json as { items: Listed[] })
      .items[0].revokedAt;
    assert.ok(first);
    assert.equal((await client.request("DELETE", `/api/admin/api-keys/${created.id}`)).status, 204);
    const again = ((await client.request("GET", "/api/admin/api-keys")).json as { items: Listed[] })
      .items[0].revokedAt;
    assert.equal(again, first);
    for (const id of [created.id + 1, "0", "-1", "abc", "1.5", "99999999999999999999"]) {
      assertError(await client.request("DELETE", `/api/admin/api-keys/${id}`), 404, "not_found");
    }
  }, ENV);
});
