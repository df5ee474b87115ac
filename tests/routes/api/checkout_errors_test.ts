// POST /api/checkout refusals: each has its status, code and message, and reaches no provider.
import assert from "node:assert/strict";
import { startCheckoutFixture } from "../../helpers/provider_standins.ts";
import { configureLog } from "../../../utils/log.ts";
import { Client } from "../../helpers/server.ts";

type ErrorJson = { error: string; message: string };

Deno.test("checkout refuses bad requests before any provider is called", async (t) => {
  const fx = await startCheckoutFixture();
  const providerCalls = () => fx.stripe.requests.length + fx.creem.requests.length;
  try {
    await t.step("without a session: 401", async () => {
      const anonymous = new Client(fx.app.baseUrl);
      const res = await anonymous.request("POST", "/api/checkout", {
        priceId: "price_pro_monthly",
      });
      assert.equal(res.status, 401);
      assert.equal((res.json as ErrorJson).error, "unauthorized");
    });

    await t.step("from another origin: 403", async () => {
      const { client } = await fx.signedIn();
      const res = await client.request("POST", "/api/checkout", { priceId: "price_pro_monthly" }, {
        origin: "https://evil.example",
      });
      assert.equal(res.status, 403);
      assert.equal((res.json as ErrorJson).error, "forbidden");
      // Without Origin, Sec-Fetch-Site decides.
      const noOrigin = await fetch(`${fx.app.baseUrl}/api/checkout`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          cookie: client.cookie ?? "",
          "sec-fetch-site": "cross-site",
        },
        body: JSON.stringify({ priceId: "price_pro_monthly" }),
      });
      assert.equal(noOrigin.status, 403);
      await noOrigin.body?.cancel();
    });

    await t.step("an unknown price: 400 naming it", async () => {
      const { client } = await fx.signedIn();
      const res = await client.request("POST", "/api/checkout", { priceId: "price_nope" });
      assert.equal(res.status, 400);
      assert.equal((res.json as ErrorJson).error, "invalid_request");
      assert.match((res.json as ErrorJson).message, /price_nope/);
    });

    await t.step("a price retired from the plans file: 400", async () => {
      const { client } = await fx.signedIn();
      await fx.app.db.sql`
        update billing.prices set active = false where price_id = 'price_pro_yearly'`;
      const res = await client.request("POST", "/api/checkout", { priceId: "price_pro_yearly" });
      assert.equal(res.status, 400);
      assert.match((res.json as ErrorJson).message, /price_pro_yearly/);
    });

    await t.step("a body without a price ID, or not JSON: 400", async () => {
      const { client } = await fx.signedIn();
      for (const body of [{}, { priceId: "" }, { priceId: 42 }]) {
        const res = await client.request("POST", "/api/checkout", body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal((res.json as ErrorJson).error, "invalid_request");
        assert.match((res.json as ErrorJson).message, /priceId/);
      }
      const res = await client.request("POST", "/api/checkout", "{not json");
      assert.equal(res.status, 400);
      assert.equal((res.json as ErrorJson).error, "invalid_json");
    });

    assert.equal(providerCalls(), 0);
  } finally {
    await fx.close();
  }
});

for (
  const [setting, priceId] of [
    ["STRIPE_SECRET_KEY", "price_pro_monthly"],
    ["CREEM_API_KEY", "prod_pro_monthly"],
  ] as const
) {
  Deno.test(`a ${priceId} checkout without ${setting}: 503 naming the setting`, async () => {
    const fx = await startCheckoutFixture({ [setting]: "" });
    try {
      const { client } = await fx.signedIn();
      const res = await client.request("POST", "/api/checkout", { priceId });
      assert.equal(res.status, 503, JSON.stringify(res.json));
      assert.equal((res.json as ErrorJson).error, "unavailable");
      assert.match((res.json as ErrorJson).message, new RegExp(`${setting} is not set`));
      assert.equal(fx.stripe.requests.length + fx.creem.requests.length, 0);
    } finally {
      await fx.close();
    }
  });
}

Deno.test("a key the provider rejects: 500, logged without the key", async () => {
  const stripeKey = "sk_test_rejected_by_standin_42";
  const creemKey = "creem_test_rejected_by_standin_42";
  const fx = await startCheckoutFixture({ STRIPE_SECRET_KEY: stripeKey, CREEM_API_KEY: creemKey });
  const lines: string[] = [];
  const restoreLog = configureLog({ format: "json", write: (line) => lines.push(line) });
  try {
    const { client } = await fx.signedIn();
    for (const priceId of ["price_pro_monthly", "prod_pro_monthly"]) {
      const res = await client.request("POST", "/api/checkout", { priceId });
      assert.equal(res.status, 500, JSON.stringify(res.json));
      assert.equal((res.json as ErrorJson).error, "internal");
    }
    assert.equal(fx.stripe.requests.length, 1, "a refusal is not retried");
    assert.equal(fx.creem.requests.length, 1);
    const logged = lines.filter((line) => /"msg":"(Stripe|Creem) refused/.test(line));
    assert.equal(logged.length, 2, lines.join("\n"));
    for (const line of lines) {
      assert.ok(!line.includes(stripeKey) && !line.includes(creemKey), line);
    }
  } finally {
    restoreLog();
    await fx.close();
  }
});
