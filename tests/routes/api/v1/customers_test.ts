// /api/v1/customers/{externalId}: create and update (201, 200), the externalId rule, email_taken,
// 404 customer_not_found on every customer route, the read bodies, grants and their replays, and
// checkout and portal through the web code paths (provider stand-ins).
import assert from "node:assert/strict";
import { assertError, send } from "../../../helpers/http.ts";
import { startCheckoutFixture } from "../../../helpers/provider_standins.ts";
import { verifyEmail } from "../../../helpers/db.ts";
import { Client } from "../../../helpers/server.ts";
import { createTallyClient } from "../../../../client/tally.ts";
import { books, newCustomer, withV1 } from "./_v1.ts";

Deno.test("PUT creates a customer (201) with the sign-up grants, then updates it (200)", async () => {
  await withV1(async (v1) => {
    const created = await v1.tally.putCustomer("user:42@app", { email: "Ada@Example.com" });
    assert.equal(created.response.status, 201);
    const customer = created.data!;
    assert.deepEqual(Object.keys(customer).sort(), [
      "balance",
      "email",
      "externalId",
      "id",
      "plan",
      "reserved",
    ]);
    assert.equal(customer.externalId, "user:42@app");
    assert.equal(customer.email, "ada@example.com");
    assert.equal(customer.reserved, 0);
    // Sign-up gift (50) and the free plan's month (50), as a web sign-up.
    assert.equal(customer.balance, 100);
    assert.equal(customer.plan?.id, "free");

    const again = await v1.tally.putCustomer("user:42@app", { name: "Ada" });
    assert.equal(again.response.status, 200);
    assert.equal(again.data?.id, customer.id);
    assert.equal(again.data?.balance, 100, "an update grants nothing");
    assert.deepEqual(await v1.tally.getCustomer("user:42@app").then((r) => r.data), again.data);

    // Without an email, with no body at all.
    const bare = await v1.call("PUT", "/api/v1/customers/bare");
    assert.equal(bare.status, 201, JSON.stringify(bare.json));
    assert.equal((bare.json as { email: string | null }).email, null);
  });
});

Deno.test("an externalId outside 1-255 of [A-Za-z0-9_-.:@] is refused with 400", async () => {
  await withV1(async (v1) => {
    for (const bad of ["a%20b", "caf%C3%A9", "a%2Fb", "x".repeat(256), "a!b", "%00"]) {
      assertError(await v1.call("PUT", `/api/v1/customers/${bad}`, {}), 400, "invalid_request");
      assertError(await v1.call("GET", `/api/v1/customers/${bad}`), 400, "invalid_request");
    }
    const longest = "x".repeat(255);
    assert.equal((await v1.call("PUT", `/api/v1/customers/${longest}`, {})).status, 201);
    const [row] = await v1.server.db.sql<{ n: number }[]>`
      select count(*)::int as n from app.users where external_id is not null`;
    assert.equal(row.n, 1, "only the valid one was created");
  });
});

Deno.test("PUT with the email of another customer answers 409 email_taken; a web user's is linked", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "first", { email: "taken@test.local" });
    const taken = await v1.call("PUT", "/api/v1/customers/second", { email: "taken@test.local" });
    assertError(taken, 409, "email_taken");
    assertError(await v1.call("GET", "/api/v1/customers/second"), 404, "customer_not_found");

    // A web user without an externalId is linked, not duplicated: 201 (now a customer) or 200.
    const web = await v1.admin.request("POST", "/api/auth/signup", {
      email: "web@test.local",
      password: "correct horse 1",
    });
    assert.equal(web.status, 201);
    const linked = await v1.tally.putCustomer("web_1", { email: "web@test.local" });
    assert.ok([200, 201].includes(linked.response.status));
    assert.equal(linked.data?.id, (web.json as { user: { id: string } }).user.id);
    assertError(
      await v1.call("PUT", "/api/v1/customers/first", { email: "not an email" }),
      400,
      "invalid_request",
    );
  });
});

Deno.test("every customer route answers 404 customer_not_found for an unknown externalId", async () => {
  await withV1(async (v1) => {
    const base = "/api/v1/customers/ghost";
    const calls: [string, string, unknown][] = [
      ["GET", base, undefined],
      ["GET", `${base}/credits`, undefined],
      ["GET", `${base}/transactions`, undefined],
      ["GET", `${base}/balance`, undefined],
      ["GET", `${base}/balance?at=2026-01-01T00:00:00Z`, undefined],
      ["POST", `${base}/checkout`, { priceId: "price_pkg_standard" }],
      ["POST", `${base}/portal`, undefined],
      ["POST", `${base}/grants`, { amount: 5, sourceKey: "g1" }],
      ["POST", `${base}/consume`, { amount: 1, idempotencyKey: "k1" }],
      ["POST", `${base}/reservations`, { amount: 1, idempotencyKey: "k1" }],
    ];
    for (const [method, path, body] of calls) {
      assertError(await v1.call(method, path, body), 404, "customer_not_found");
    }
    const [row] = await v1.server.db.sql<{ n: number }[]>`
      select count(*)::int as n from app.users where external_id = 'ghost'`;
    assert.equal(row.n, 0, "no route created the customer");
  });
});

Deno.test("credits, transactions and balance answer the web bodies for the customer", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "reader");
    const credits = await v1.tally.credits("reader");
    assert.equal(credits.response.status, 200);
    assert.equal(credits.data?.balance, 100);
    assert.equal(credits.data?.grants.length, 2);

    const spent = await v1.tally.consume("reader", { amount: 30, description: "a call" });
    assert.equal(spent.response.status, 200);
    const page = await v1.tally.transactions("reader", { limit: 2 });
    assert.equal(page.response.status, 200);
    assert.equal(page.data?.items.length, 2);
    assert.equal(page.data?.items[0].amount, -30);
    assert.equal(page.data?.items[0].balanceAfter, 70);
    assert.equal(page.data?.items[0].description, "a call");
    assert.ok(page.data?.nextCursor);
    const rest = await v1.tally.transactions("reader", { cursor: page.data!.nextCursor! });
    assert.equal(rest.data?.items.length, 1);
    const usage = await v1.tally.transactions("reader", { kind: "usage" });
    assert.deepEqual(usage.data?.items.map((item) => item.kind), ["usage"]);
    for (const query of ["limit=0", "limit=101", "cursor=abc", "kind=nonsense"]) {
      assertError(
        await v1.call("GET", `/api/v1/customers/reader/transactions?${query}`),
        400,
        "invalid_request",
      );
    }

    const now = await v1.tally.balance("reader");
    assert.equal(now.response.status, 200);
    assert.equal(now.data?.balance, 70);
    assert.equal(now.data?.reserved, 0);
    assert.ok(!Number.isNaN(Date.parse(now.data!.at)));
    const before = await v1.tally.balance("reader", new Date(Date.now() - 365 * 86400_000));
    assert.equal(before.data?.balance, 0, "a year ago the customer had nothing");
    for (const at of ["yesterday", "2026-13-01T00:00:00Z", "1700000000"]) {
      assertError(
        await v1.call("GET", `/api/v1/customers/reader/balance?at=${at}`),
        400,
        "invalid_request",
      );
    }
  });
});

Deno.test("grants: 201, the same sourceKey 200 with the same id, another customer's 409", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "g_one");
    await newCustomer(v1, "g_two");
    const first = await v1.tally.grant("g_one", { amount: 25, sourceKey: "promo-1" });
    assert.equal(first.response.status, 201);
    assert.equal(first.data?.balance, 125);
    const replay = await v1.tally.grant("g_one", { amount: 25, sourceKey: "promo-1" });
    assert.equal(replay.response.status, 200);
    assert.deepEqual(replay.data, first.data);
    assert.equal((await books(v1, "g_one")).balance, 125);

    const other = await v1.call("POST", "/api/v1/customers/g_two/grants", {
      amount: 25,
      sourceKey: "promo-1",
    });
    assertError(other, 409, "source_key_taken");
    assert.equal((await books(v1, "g_two")).balance, 100);

    const adjustment = await v1.tally.grant("g_two", {
      amount: 10,
      sourceKey: "adj-1",
      kind: "adjustment",
      expiresAt: new Date(Date.now() + 86400_000).toISOString(),
      description: "goodwill",
    });
    assert.equal(adjustment.response.status, 201);
    const before = await books(v1, "g_two");
    for (
      const body of [
        { amount: 0, sourceKey: "z" },
        { amount: 1.5, sourceKey: "z" },
        { amount: "5", sourceKey: "z" },
        { amount: 5 },
        { amount: 5, sourceKey: "" },
        { amount: 5, sourceKey: "z", kind: "signup_gift" },
        { amount: 5, sourceKey: "z", expiresAt: "tomorrow" },
      ]
    ) {
      assertError(
        await v1.call("POST", "/api/v1/customers/g_two/grants", body),
        400,
        "invalid_request",
      );
    }
    assert.deepEqual(await books(v1, "g_two"), before);
  });
});

Deno.test("checkout and portal for a customer go through the web's provider code", async () => {
  const fx = await startCheckoutFixture({ ADMIN_EMAILS: "v1-checkout@test.local" });
  try {
    const admin = new Client(fx.app.baseUrl);
    await admin.signup("v1-checkout@test.local");
    await verifyEmail(fx.app.db.sql, "v1-checkout@test.local");
    const made = await admin.request("POST", "/api/admin/api-keys", {
      name: "checkout",
      scopes: ["read", "write"],
    });
    const key = (made.json as { key: string }).key;
    const tally = createTallyClient({ baseUrl: fx.app.baseUrl, apiKey: key, retries: 0 });
    assert.equal(
      (await tally.putCustomer("buyer", { email: "buyer@test.local" })).response.status,
      201,
    );

    const checkout = await tally.checkout("buyer", "price_pkg_standard");
    assert.equal(checkout.response.status, 200, JSON.stringify(checkout.error));
    assert.match(checkout.data!.url, /^https?:\/\//);
    const sent = fx.stripe.requests.at(-1);
    assert.ok(sent, "nothing reached the Stripe stand-in");
    assert.equal(sent.path, "/v1/checkout/sessions");
    const [user] = await fx.app.db.sql<{ id: string }[]>`
      select id from app.users where external_id = 'buyer'`;
    assert.ok(JSON.stringify(sent).includes(user.id), "the session names the customer's user id");

    const unknownPrice = await tally.checkout("buyer", "price_nope");
    assert.equal(unknownPrice.response.status, 400, "an unknown price, as on the web");
    // Never paid: no billing account yet, as on the web.
    const portal = await tally.portal("buyer");
    assert.equal(portal.response.status, 404);
    assert.equal(portal.error?.error, "not_found");
  } finally {
    await fx.close();
  }
});

Deno.test("a body that is not JSON answers 400 invalid_json; one not sent as JSON 400 invalid_request", async () => {
  await withV1(async (v1) => {
    const put = (body: string, type: string) =>
      send(v1.server.baseUrl, "PUT", "/api/v1/customers/typed", {
        headers: { authorization: `Bearer ${v1.writeKey}`, "content-type": type },
        body,
      });
    assertError(await put("{", "application/json"), 400, "invalid_json");
    assertError(await put('{"email": "a@b.co"}', "text/plain"), 400, "invalid_request");
    assertError(
      await put("email=a@b.co", "application/x-www-form-urlencoded"),
      400,
      "invalid_request",
    );
    assertError(await v1.call("GET", "/api/v1/customers/typed"), 404, "customer_not_found");
    assert.equal((await put('{"email": "a@b.co"}', "application/json; charset=utf-8")).status, 201);
  });
});
