// POST /api/billing/portal: which customer's portal opens, and what reaches the stand-ins.
import assert from "node:assert/strict";
import type { Sql } from "../../../db/client.ts";
import {
  CREEM_TEST_KEY,
  startCheckoutFixture,
  STRIPE_TEST_KEY,
} from "../../helpers/provider_standins.ts";
import { Client } from "../../helpers/server.ts";

type ErrorJson = { error: string; message: string };

async function addCustomer(
  sql: Sql,
  userId: string,
  provider: "stripe" | "creem",
  ref: string,
  createdAt: string,
) {
  await sql`
    insert into billing.customers (user_id, provider, customer_ref, created_at)
    values (${userId}, ${provider}, ${ref}, ${createdAt})`;
}

async function addSubscription(
  sql: Sql,
  userId: string,
  provider: "stripe" | "creem",
  periodEnd: string,
  status = "active",
) {
  await sql`
    insert into billing.subscriptions (user_id, provider, provider_ref, plan_id, price_id, interval,
                                       status, current_period_start, current_period_end)
    values (${userId}, ${provider}, ${`sub_${crypto.randomUUID()}`}, 'pro',
            ${provider === "stripe" ? "price_pro_monthly" : "prod_pro_monthly"}, 'month',
            ${status}, ${periodEnd}::timestamptz - interval '1 month', ${periodEnd})`;
}

const inAMonth = () => new Date(Date.now() + 20 * 86400_000).toISOString();

Deno.test("the billing portal opens for the user's customer", async (t) => {
  const fx = await startCheckoutFixture();
  const appUrl = fx.app.config.appUrl;
  const sql = fx.app.db.sql;
  const portal = (client: Client) => client.request("POST", "/api/billing/portal");
  const lastStripePortal = () => {
    const request = fx.stripe.requests.at(-1);
    assert.ok(request, "Tally sent nothing to Stripe");
    assert.equal(request.path, "/v1/billing_portal/sessions");
    assert.equal(request.headers["authorization"], `Bearer ${STRIPE_TEST_KEY}`);
    return request;
  };
  const lastCreemLink = () => {
    const request = fx.creem.requests.at(-1);
    assert.ok(request, "Tally sent nothing to Creem");
    assert.equal(request.path, "/v1/customers/billing");
    assert.equal(request.headers["x-api-key"], CREEM_TEST_KEY);
    return request;
  };
  try {
    await t.step("never paid: 404 and no provider is asked", async () => {
      const { client } = await fx.signedIn();
      const res = await portal(client);
      assert.equal(res.status, 404);
      assert.equal((res.json as ErrorJson).error, "not_found");
      assert.equal(fx.stripe.requests.length + fx.creem.requests.length, 0);
    });

    await t.step("without a session: 401; from another origin: 403", async () => {
      const anonymous = new Client(fx.app.baseUrl);
      assert.equal((await portal(anonymous)).status, 401);
      const { client, user } = await fx.signedIn();
      await addCustomer(sql, user.id, "stripe", "cus_cross_origin", "2026-01-01T00:00:00Z");
      const res = await client.request("POST", "/api/billing/portal", undefined, {
        origin: "https://evil.example",
      });
      assert.equal(res.status, 403);
      assert.equal(fx.stripe.requests.length, 0);
    });

    await t.step("a Stripe customer gets a portal session returning to /billing", async () => {
      const { client, user } = await fx.signedIn();
      await addCustomer(sql, user.id, "stripe", "cus_portal_1", "2026-01-01T00:00:00Z");
      const res = await portal(client);
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const request = lastStripePortal();
      assert.deepEqual(request.body, { customer: "cus_portal_1", return_url: `${appUrl}/billing` });
      assert.equal((res.json as { url: string }).url, request.answer?.body.url);
    });

    await t.step("a Creem customer gets a billing link", async () => {
      const { client, user } = await fx.signedIn();
      await addCustomer(sql, user.id, "creem", "cust_portal_1", "2026-01-01T00:00:00Z");
      const res = await portal(client);
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const request = lastCreemLink();
      assert.deepEqual(request.body, { customer_id: "cust_portal_1" });
      assert.equal((res.json as { url: string }).url, request.answer?.body.customer_portal_link);
    });

    await t.step("customers with both: the active subscription's provider wins", async () => {
      const { client, user } = await fx.signedIn();
      await addCustomer(sql, user.id, "stripe", "cus_both_old", "2026-01-01T00:00:00Z");
      await addCustomer(sql, user.id, "creem", "cust_both_new", "2026-03-01T00:00:00Z");
      await addSubscription(sql, user.id, "stripe", inAMonth());
      const stripeBefore = fx.stripe.requests.length;
      const res = await portal(client);
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.equal(fx.stripe.requests.length, stripeBefore + 1);
      assert.equal(lastStripePortal().body.customer, "cus_both_old");
    });

    await t.step("customers with both, no subscription in force: the most recent", async () => {
      const { client, user } = await fx.signedIn();
      await addCustomer(sql, user.id, "stripe", "cus_recent_old", "2026-01-01T00:00:00Z");
      await addCustomer(sql, user.id, "creem", "cust_recent_new", "2026-03-01T00:00:00Z");
      // Neither an ended period nor a canceled subscription counts as in force.
      await addSubscription(sql, user.id, "stripe", "2026-02-01T00:00:00Z");
      await addSubscription(sql, user.id, "stripe", inAMonth(), "canceled");
      const creemBefore = fx.creem.requests.length;
      const res = await portal(client);
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.equal(fx.creem.requests.length, creemBefore + 1);
      assert.deepEqual(lastCreemLink().body, { customer_id: "cust_recent_new" });
    });

    await t.step("a user never sees another user's portal", async () => {
      const a = await fx.signedIn();
      const b = await fx.signedIn();
      await addCustomer(sql, a.user.id, "stripe", "cus_only_a", "2026-01-01T00:00:00Z");
      const res = await portal(b.client);
      assert.equal(res.status, 404);
    });

    await t.step("Stripe failing answers 503", async () => {
      const { client, user } = await fx.signedIn();
      await addCustomer(sql, user.id, "stripe", "cus_down", "2026-01-01T00:00:00Z");
      fx.stripe.failWith(503);
      try {
        const res = await portal(client);
        assert.equal(res.status, 503, JSON.stringify(res.json));
        assert.equal((res.json as ErrorJson).error, "unavailable");
      } finally {
        fx.stripe.failWith(null);
      }
    });
  } finally {
    await fx.close();
  }
});

Deno.test("the portal of a provider without its key: 503 naming the setting", async () => {
  const fx = await startCheckoutFixture({ CREEM_API_KEY: "" });
  try {
    const { client, user } = await fx.signedIn();
    await addCustomer(fx.app.db.sql, user.id, "creem", "cust_nokey", "2026-01-01T00:00:00Z");
    const res = await client.request("POST", "/api/billing/portal");
    assert.equal(res.status, 503, JSON.stringify(res.json));
    assert.match((res.json as ErrorJson).message, /CREEM_API_KEY is not set/);
    assert.equal(fx.creem.requests.length, 0);
  } finally {
    await fx.close();
  }
});
