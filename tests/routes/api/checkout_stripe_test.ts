// POST /api/checkout for Stripe prices, checked by what reaches the local Stripe stand-in.
import assert from "node:assert/strict";
import { startCheckoutFixture, STRIPE_TEST_KEY } from "../../helpers/provider_standins.ts";

Deno.test("Stripe checkout sessions carry the price, the user and Tally's URLs", async (t) => {
  const fx = await startCheckoutFixture();
  const appUrl = fx.app.config.appUrl;
  const lastSession = () => {
    const request = fx.stripe.requests.at(-1);
    assert.ok(request, "Tally sent nothing to Stripe");
    assert.equal(request.method, "POST");
    assert.equal(request.path, "/v1/checkout/sessions");
    assert.equal(request.headers["authorization"], `Bearer ${STRIPE_TEST_KEY}`);
    return request.body;
  };
  try {
    await t.step("a monthly price opens a subscription with the user on it", async () => {
      const { client, user } = await fx.signedIn();
      const res = await client.request("POST", "/api/checkout", { priceId: "price_pro_monthly" });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const { url } = res.json as { url: string };
      assert.match(url, /^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_/);
      const body = lastSession();
      assert.equal(url, fx.stripe.requests.at(-1)?.answer?.body.url);
      assert.equal(body.mode, "subscription");
      assert.deepEqual(body.line_items, [{ price: "price_pro_monthly", quantity: "1" }]);
      assert.equal(body.client_reference_id, user.id);
      assert.deepEqual(body.metadata, { user_id: user.id });
      assert.deepEqual(body.subscription_data, { metadata: { user_id: user.id } });
      assert.equal(body.payment_intent_data, undefined);
      assert.equal(body.customer_email, user.email);
      assert.equal(body.customer, undefined);
      assert.equal(body.success_url, `${appUrl}/checkout/success?session_id={CHECKOUT_SESSION_ID}`);
      assert.equal(body.cancel_url, `${appUrl}/billing`);
    });

    await t.step("a yearly price is a subscription too", async () => {
      const { client } = await fx.signedIn();
      const res = await client.request("POST", "/api/checkout", { priceId: "price_pro_yearly" });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const body = lastSession();
      assert.equal(body.mode, "subscription");
      assert.deepEqual(body.line_items, [{ price: "price_pro_yearly", quantity: "1" }]);
    });

    for (const priceId of ["price_lifetime", "price_pkg_standard"]) {
      await t.step(
        `a one-time price (${priceId}) is a payment with the user on the intent`,
        async () => {
          const { client, user } = await fx.signedIn();
          const res = await client.request("POST", "/api/checkout", { priceId });
          assert.equal(res.status, 200, JSON.stringify(res.json));
          const body = lastSession();
          assert.equal(body.mode, "payment");
          assert.deepEqual(body.line_items, [{ price: priceId, quantity: "1" }]);
          assert.deepEqual(body.metadata, { user_id: user.id });
          assert.deepEqual(body.payment_intent_data, { metadata: { user_id: user.id } });
          assert.equal(body.subscription_data, undefined);
          assert.equal(body.customer_email, user.email);
          // Without a Stripe customer the billing portal could never open for this buyer.
          assert.equal(body.customer_creation, "always");
        },
      );
    }

    await t.step("a stored Stripe customer is reused instead of the email", async () => {
      const { client, user } = await fx.signedIn();
      await fx.app.db.sql`
        insert into billing.customers (user_id, provider, customer_ref)
        values (${user.id}, 'stripe', 'cus_stored_for_test'),
               (${user.id}, 'creem', 'cust_other_provider')`;
      for (const priceId of ["price_pro_monthly", "price_lifetime"]) {
        const res = await client.request("POST", "/api/checkout", { priceId });
        assert.equal(res.status, 200, JSON.stringify(res.json));
        const body = lastSession();
        assert.equal(body.customer, "cus_stored_for_test");
        assert.equal(body.customer_email, undefined);
        assert.equal(body.customer_creation, undefined);
      }
    });

    await t.step("amounts, credits or metadata in the request never reach Stripe", async () => {
      const { client, user } = await fx.signedIn();
      const res = await client.request("POST", "/api/checkout", {
        priceId: "price_pkg_standard",
        credits: 1_000_000,
        amount: 1,
        metadata: { credits: "1000000", package_id: "huge" },
      });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const body = lastSession();
      assert.deepEqual(body.metadata, { user_id: user.id });
      assert.deepEqual(body.payment_intent_data, { metadata: { user_id: user.id } });
      assert.deepEqual(body.line_items, [{ price: "price_pkg_standard", quantity: "1" }]);
      // Tally keeps its own record of what the session sells, for the webhook to read.
      const recorded = await fx.app.db.sql<{ price_id: string }[]>`
        select price_id from billing.checkouts where user_id = ${user.id} and provider = 'stripe'`;
      assert.deepEqual(recorded.map((r) => r.price_id), ["price_pkg_standard"]);
    });

    await t.step("Stripe failing answers 503 and the user may retry", async () => {
      const { client } = await fx.signedIn();
      fx.stripe.failWith(500);
      try {
        const res = await client.request("POST", "/api/checkout", { priceId: "price_pro_monthly" });
        assert.equal(res.status, 503, JSON.stringify(res.json));
        assert.equal((res.json as { error: string }).error, "unavailable");
        assert.match((res.json as { message: string }).message, /Stripe/);
      } finally {
        fx.stripe.failWith(null);
      }
      const again = await client.request("POST", "/api/checkout", { priceId: "price_pro_monthly" });
      assert.equal(again.status, 200, JSON.stringify(again.json));
    });
  } finally {
    await fx.close();
  }
});
