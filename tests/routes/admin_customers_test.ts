// An API customer created without an email (api.put_customer) is an account like any other: it
// can be granted and consume, and the admin pages list, find and show it by its externalId over
// real HTTP without tripping on the missing email.
import assert from "node:assert/strict";
import { verifyEmail } from "../helpers/db.ts";
import { signedUp, withServer } from "../helpers/http.ts";
import type { Client } from "../helpers/server.ts";

const ADMIN = "boss@test.local";

async function html(client: Client, path: string): Promise<{ status: number; html: string }> {
  const response = await fetch(`${client.baseUrl}${path}`, {
    redirect: "manual",
    headers: client.cookie ? { cookie: client.cookie } : {},
  });
  return { status: response.status, html: await response.text() };
}

Deno.test("an API customer without email is granted, consumes and shows on the admin pages", async () => {
  await withServer(async (server) => {
    const sql = server.db.sql;
    const { client: admin } = await signedUp(server, ADMIN);
    await verifyEmail(sql, ADMIN);

    const [{ put }] = await sql<{ put: { created: boolean; customer: { id: string } } }[]>`
      select api.put_customer('acme:user-42', null, 'Wile') as put`;
    assert.equal(put.created, true);
    const id = put.customer.id;
    const [{ granted }] = await sql<{ granted: { balance: number } }[]>`
      select api.grant('acme:user-42', 25, 'welcome') as granted`;
    assert.equal(granted.balance, 125);
    const [{ balance }] = await sql<{ balance: number }[]>`
      select credits.consume(${id}, 40, 'first-use', 'rockets') as balance`;
    assert.equal(balance, 85);

    const list = await html(admin, "/admin");
    assert.equal(list.status, 200);
    assert.match(
      list.html,
      new RegExp(`<a href="/admin/users/${id}">acme:user-42</a></td><td[^>]*>not verified</td>`),
    );
    assert.match(list.html, /<td[^>]*><code>acme:user-42<\/code><\/td>/);
    assert.ok(!list.html.includes(">null<"), "no null printed");

    const found = await html(admin, "/admin?q=USER-42");
    assert.match(found.html, new RegExp(`/admin/users/${id}`), "found by its externalId");
    assert.doesNotMatch(found.html, new RegExp(`>${ADMIN}</a>`), "and only it");

    const page = await html(admin, `/admin/users/${id}`);
    assert.equal(page.status, 200);
    assert.match(page.html, /<h1>acme:user-42<\/h1>/);
    assert.match(page.html, /<title>[^<]*acme:user-42/);
    assert.match(page.html, /id="email-verified"[^>]*>No email: an API customer/);
    assert.match(page.html, /id="user-balance"[^>]*>85 credits/);
    assert.match(page.html, /rockets/);
    assert.ok(!page.html.includes("users verify"), "no verify hint without an email");
    assert.ok(!page.html.includes(">null<"), "no null printed");
  }, { ADMIN_EMAILS: ADMIN });
});
