// /admin/api-keys (routes/admin/api-keys.tsx): admins only; the form makes a key and shows it in
// its answer only (the list shows the prefix; the key is in no redirect or flash); a bad form is
// 400 and makes nothing; the revoke button revokes and leaves a message for the next page.
import assert from "node:assert/strict";
import { verifyEmail } from "../helpers/db.ts";
import { signedUp, withApp } from "../helpers/http.ts";
import { type Client, fetchFrom } from "../helpers/server.ts";

const ADMIN = "keys-page@test.local";
const ENV = { ADMIN_EMAILS: ADMIN };

type Reply = { status: number; location: string | null; html: string };

/** A plain request as the browser sends it (same origin, the session cookie), no redirects. */
async function browse(
  client: Client,
  method: "GET" | "POST",
  path: string,
  form?: Record<string, string>,
): Promise<Reply> {
  const response = await fetchFrom(client.baseUrl)(`${client.baseUrl}${path}`, {
    method,
    redirect: "manual",
    headers: {
      ...(client.cookie ? { cookie: client.cookie } : {}),
      ...(form
        ? { origin: client.origin, "content-type": "application/x-www-form-urlencoded" }
        : {}),
    },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  return {
    status: response.status,
    location: response.headers.get("location"),
    html: await response.text(),
  };
}

Deno.test("admin api-keys page: 404 for anyone but an admin, linked from /admin", async () => {
  await withApp(async (server) => {
    const { client: user } = await signedUp(server);
    assert.equal((await browse(user, "GET", "/admin/api-keys")).status, 404);
    assert.equal(
      (await browse(user, "POST", "/admin/api-keys", { name: "k", access: "write" })).status,
      404,
    );
    const [row] = await server.db.sql<{ n: number }[]>`select count(*)::int as n from app.api_keys`;
    assert.equal(row.n, 0);
    const { client: admin } = await signedUp(server, ADMIN);
    await verifyEmail(server.db.sql, ADMIN);
    assert.match((await browse(admin, "GET", "/admin")).html, /href="\/admin\/api-keys"/);
    const empty = await browse(admin, "GET", "/admin/api-keys");
    assert.equal(empty.status, 200);
    assert.match(empty.html, /No API keys yet/);
  }, ENV);
});

Deno.test("admin api-keys page: make a key (shown once), list it by prefix, revoke it", async () => {
  await withApp(async (server) => {
    const { client: admin } = await signedUp(server, ADMIN);
    await verifyEmail(server.db.sql, ADMIN);

    const made = await browse(admin, "POST", "/admin/api-keys", {
      name: "Reports",
      access: "read",
    });
    assert.equal(made.status, 200);
    assert.equal(made.location, null, "the key must not go through a redirect");
    const key = /<code id="new-key-value">(tally_sk_[A-Za-z0-9_-]{43})<\/code>/.exec(made.html)
      ?.[1];
    assert.ok(key, made.html);
    assert.match(made.html, /shown only this once/);
    const [stored] = await server.db.sql<{ id: number; scopes: string[]; prefix: string }[]>`
      select id, scopes, prefix from app.api_keys`;
    assert.deepEqual(stored.scopes, ["read"]);
    assert.equal(stored.prefix, key.slice(0, 13));

    // The next view lists it without the key.
    const listed = await browse(admin, "GET", "/admin/api-keys");
    assert.ok(!listed.html.includes(key), "the list shows the key");
    assert.ok(listed.html.includes(`${key.slice(0, 13)}…`));
    assert.match(listed.html, /Reports/);
    assert.match(listed.html, /Revoke the key Reports/);

    const writer = await browse(admin, "POST", "/admin/api-keys", {
      name: "Backend",
      access: "write",
    });
    assert.equal(writer.status, 200);
    const [scopes] = await server.db.sql<{ scopes: string[] }[]>`
      select scopes from app.api_keys where name = 'Backend'`;
    assert.deepEqual(scopes.scopes, ["read", "write"]);

    const revoke = await browse(admin, "POST", `/admin/api-keys/${stored.id}/revoke`, {});
    assert.equal(revoke.status, 303);
    assert.equal(revoke.location, "/admin/api-keys");
    const after = await browse(admin, "GET", "/admin/api-keys");
    assert.match(
      after.html,
      /Revoked the API key &quot;Reports&quot;|Revoked the API key "Reports"/,
    );
    assert.doesNotMatch(after.html, /Revoke the key Reports/);
    assert.match(after.html, /Revoke the key Backend/);
    const [revoked] = await server.db.sql<{ revoked: boolean }[]>`
      select revoked_at is not null as revoked from app.api_keys where id = ${stored.id}`;
    assert.equal(revoked.revoked, true);
    // The message is shown once.
    assert.doesNotMatch(
      (await browse(admin, "GET", "/admin/api-keys")).html,
      /Revoked the API key/,
    );
    assert.equal((await browse(admin, "POST", "/admin/api-keys/999/revoke", {})).status, 404);
    assert.equal((await browse(admin, "POST", "/admin/api-keys/abc/revoke", {})).status, 404);
  }, ENV);
});

Deno.test("admin api-keys page: a bad form is 400 with the error by its field, and makes nothing", async () => {
  await withApp(async (server) => {
    const { client: admin } = await signedUp(server, ADMIN);
    await verifyEmail(server.db.sql, ADMIN);
    const forms: Record<string, string>[] = [
      { name: "", access: "write" },
      { name: "x".repeat(101), access: "read" },
      { name: "k", access: "admin" },
      { name: "k" },
    ];
    for (const form of forms) {
      const reply = await browse(admin, "POST", "/admin/api-keys", form);
      assert.equal(reply.status, 400, JSON.stringify(form));
      assert.match(reply.html, /field-error/);
      assert.doesNotMatch(reply.html, /new-key-value/);
    }
    const [row] = await server.db.sql<{ n: number }[]>`select count(*)::int as n from app.api_keys`;
    assert.equal(row.n, 0);
  }, ENV);
});
