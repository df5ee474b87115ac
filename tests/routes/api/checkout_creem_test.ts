// POST /api/checkout for Creem products, checked by what reaches the local Creem stand-in.
import assert from "node:assert/strict";
import { CREEM_TEST_KEY, startCheckoutFixture } from "../../helpers/provider_standins.ts";

Deno.test("Creem checkouts carry the product, the user and Tally's success URL", async (t) => {
  const fx = await startCheckoutFixture();
  const appUrl = fx.app.config.appUrl;
  const lastCheckout = () => {
    const request = fx.creem.requests.at(-1);
    assert.ok(request, "Tally sent nothing to Creem");
    assert.equal(request.method, "POST");
    assert.equal(request.path, "/v1/checkouts");
    assert.equal(request.headers["x-api-key"], CREEM_TEST_KEY);
    assert.match(request.headers["content-type"] ?? "", /application\/json/);
    return request;
  };
  try {
    await t.step("a product opens a checkout with request_id, metadata and email", async () => {
      const { client, user } = await fx.signedIn();
      const res = await client.request("POST", "/api/checkout", { priceId: "prod_pro_monthly" });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const request = lastCheckout();
      assert.equal((res.json as { url: string }).url, request.answer?.body.checkout_url);
      assert.match((res.json as { url: string }).url, /^https:\/\/creem\.io\/test\/checkout\//);
      const body = request.body;
      assert.equal(body.product_id, "prod_pro_monthly");
      assert.equal(body.units, 1);
      assert.match(String(body.request_id), new RegExp(`^${user.id}\\.[0-9a-f-]{36}$`));
      assert.deepEqual(body.metadata, { user_id: user.id });
      assert.equal(body.success_url, `${appUrl}/checkout/success`);
      assert.deepEqual(body.customer, { email: user.email });
      assert.equal(fx.stripe.requests.length, 0, "a Creem product must not reach Stripe");
    });

    await t.step("each attempt has its own request_id", async () => {
      const { client } = await fx.signedIn();
      const ids = [];
      for (let i = 0; i < 2; i++) {
        const res = await client.request("POST", "/api/checkout", { priceId: "prod_pkg_standard" });
        assert.equal(res.status, 200, JSON.stringify(res.json));
        ids.push(lastCheckout().body.request_id);
      }
      assert.notEqual(ids[0], ids[1]);
    });

    await t.step("a stored Creem customer is named by id", async () => {
      const { client, user } = await fx.signedIn();
      await fx.app.db.sql`
        insert into billing.customers (user_id, provider, customer_ref)
        values (${user.id}, 'creem', 'cust_stored_for_test')`;
      const res = await client.request("POST", "/api/checkout", { priceId: "prod_pkg_standard" });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.deepEqual(lastCheckout().body.customer, { id: "cust_stored_for_test" });
    });

    await t.step("metadata in the request never reaches Creem", async () => {
      const { client, user } = await fx.signedIn();
      const res = await client.request("POST", "/api/checkout", {
        priceId: "prod_pkg_standard",
        metadata: { credits: 999999 },
        units: 50,
      });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const body = lastCheckout().body;
      assert.deepEqual(body.metadata, { user_id: user.id });
      assert.equal(body.units, 1);
    });

    await t.step("Creem failing answers 503", async () => {
      const { client } = await fx.signedIn();
      fx.creem.failWith(502);
      try {
        const res = await client.request("POST", "/api/checkout", { priceId: "prod_pro_monthly" });
        assert.equal(res.status, 503, JSON.stringify(res.json));
        assert.equal((res.json as { error: string }).error, "unavailable");
        assert.match((res.json as { message: string }).message, /Creem/);
      } finally {
        fx.creem.failWith(null);
      }
    });
  } finally {
    await fx.close();
  }
});
