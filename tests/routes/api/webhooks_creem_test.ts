// Creem webhooks end to end: every event type Tally acts on, signed with HMAC-SHA256 as Creem
// signs them.
import assert from "node:assert/strict";
import { insertUser } from "../../helpers/db.ts";
import {
  creditsOf,
  creemCheckout,
  creemDispute,
  creemEvent,
  creemRefund,
  creemSubscription,
  inboxRow,
  postCreem,
  uniqueId,
  WEBHOOK_ENV,
} from "../../helpers/fixtures_webhooks.ts";
import { startTestServer } from "../../helpers/server.ts";

const DAY = 86_400_000;
const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString();

Deno.test("creem webhooks apply every credit rule once", async (t) => {
  const server = await startTestServer(WEBHOOK_ENV);
  const { sql } = server.db;
  const base = server.baseUrl;
  try {
    await t.step("checkout.completed for a package grants its credits once", async () => {
      const user = await insertUser(sql);
      const event = creemEvent(
        "checkout.completed",
        creemCheckout({
          productId: "prod_pkg_standard",
          customer: uniqueId("cust"),
          userId: user,
          metadata: { credits: 5000, package: "mega" },
        }),
      );
      assert.deepEqual(await postCreem(base, event), {
        status: 200,
        json: { received: true, result: "processed" },
      });
      assert.equal((await postCreem(base, event)).json?.result, "duplicate");
      const credits = await creditsOf(sql, user);
      assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [["package", 200]]);
    });

    await t.step("a subscription's life: active, paid, update, past_due … expired", async () => {
      const email = `${uniqueId("creem")}@test.local`;
      const user = await insertUser(sql, email);
      const sub = uniqueId("sub");
      const customer = uniqueId("cust");
      const now = Date.now();
      const periodStart = iso(now - DAY);
      const periodEnd = iso(now + 29 * DAY);
      const subscription = (over: Partial<Parameters<typeof creemSubscription>[0]> = {}) =>
        creemSubscription({
          id: sub,
          productId: "prod_pro_monthly",
          customer,
          email,
          periodStart,
          periodEnd,
          userId: user,
          ...over,
        });
      const send = async (type: string, object: Record<string, unknown>, at: number) =>
        (await postCreem(base, creemEvent(type, object, { createdAt: at }))).json?.result;

      // The recurring checkout only links the customer; the credits come with subscription.paid.
      const checkout = creemEvent(
        "checkout.completed",
        creemCheckout({
          productId: "prod_pro_monthly",
          customer,
          userId: user,
          subscription: subscription(),
        }),
      );
      assert.equal((await postCreem(base, checkout)).json?.result, "processed");
      assert.equal(await send("subscription.active", subscription(), now), "processed");
      const transactionId = uniqueId("tran");
      assert.equal(
        await send("subscription.paid", subscription({ transactionId }), now + 1),
        "processed",
      );
      // The same period paid again (another event) grants nothing.
      await send("subscription.paid", subscription({ transactionId }), now + 2);
      assert.equal((await creditsOf(sql, user)).balance, 1000);
      assert.equal((await sql`select plan_id from billing.plan_of(${user})`)[0].plan_id, "pro");

      assert.equal(await send("subscription.update", subscription(), now + 3), "processed");
      assert.equal(
        await send(
          "subscription.scheduled_cancel",
          subscription({ status: "scheduled_cancel" }),
          now + 4,
        ),
        "processed",
      );
      let [row] = await sql`select status, cancel_at_period_end from billing.subscriptions
                             where provider_ref = ${sub}`;
      assert.deepEqual({ ...row }, { status: "active", cancel_at_period_end: true });
      for (
        const [type, status] of [
          ["subscription.past_due", "past_due"],
          ["subscription.unpaid", "unpaid"],
          ["subscription.paused", "paused"],
          ["subscription.canceled", "canceled"],
          ["subscription.expired", "expired"],
        ] as const
      ) {
        const at = now + 10 +
          ["past_due", "unpaid", "paused", "canceled", "expired"].indexOf(status);
        assert.equal(await send(type, subscription({ status }), at), "processed");
        [row] = await sql`select status from billing.subscriptions where provider_ref = ${sub}`;
        assert.equal(row.status, status, type);
      }
      // A late, older event does not revive it.
      await send("subscription.active", subscription(), now + 5);
      [row] = await sql`select status from billing.subscriptions where provider_ref = ${sub}`;
      assert.equal(row.status, "expired");
      assert.equal((await sql`select plan_id from billing.plan_of(${user})`)[0].plan_id, "free");
      // Credits already granted stay.
      assert.equal((await creditsOf(sql, user)).balance, 1000);
    });

    await t.step("subscription.trialing grants trialCredits once", async () => {
      const user = await insertUser(sql);
      const sub = uniqueId("sub");
      const now = Date.now();
      const object = creemSubscription({
        id: sub,
        productId: "prod_pro_monthly",
        customer: uniqueId("cust"),
        status: "trialing",
        periodStart: iso(now),
        periodEnd: iso(now + 7 * DAY),
        userId: user,
      });
      await postCreem(base, creemEvent("subscription.trialing", object, { createdAt: now }));
      await postCreem(base, creemEvent("subscription.trialing", object, { createdAt: now + 1 }));
      const credits = await creditsOf(sql, user);
      assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [["trial", 100]]);
    });

    await t.step("refund.created removes the refunded share; a second one the rest", async () => {
      const user = await insertUser(sql);
      const transactionId = uniqueId("tran");
      const orderId = uniqueId("ord");
      await postCreem(
        base,
        creemEvent(
          "checkout.completed",
          creemCheckout({
            productId: "prod_pkg_standard",
            customer: uniqueId("cust"),
            userId: user,
            orderId,
            transactionId,
          }),
        ),
      );
      const refund = (amount: number) =>
        creemEvent("refund.created", creemRefund({ transactionId, orderId, amount }));
      assert.equal((await postCreem(base, refund(745))).json?.result, "processed");
      assert.equal((await creditsOf(sql, user)).balance, 100);
      await postCreem(base, refund(745));
      const credits = await creditsOf(sql, user);
      assert.equal(credits.balance, 0);
      assert.deepEqual(
        credits.ledger.filter((e) => e.kind === "refund").map((e) => e.amount),
        [-100, -100],
      );
    });

    await t.step("dispute.created removes every unspent credit of the payment", async () => {
      const user = await insertUser(sql);
      const transactionId = uniqueId("tran");
      await postCreem(
        base,
        creemEvent(
          "checkout.completed",
          creemCheckout({
            productId: "prod_pkg_standard",
            customer: uniqueId("cust"),
            userId: user,
            transactionId,
          }),
        ),
      );
      await sql`select credits.grant(${user}, 40, 'bonus', ${uniqueId("bonus")})`;
      await sql`select credits.consume(${user}, 50, 'before-dispute')`;
      const dispute = creemEvent("dispute.created", creemDispute({ transactionId }));
      assert.equal((await postCreem(base, dispute)).json?.result, "processed");
      const credits = await creditsOf(sql, user);
      // The package's grant expires sooner (90 days) than the bonus (never): it was spent first.
      assert.equal(credits.balance, 40);
      assert.deepEqual(credits.ledger.at(-1), { kind: "dispute", amount: -150, balance_after: 40 });
    });

    await t.step("subscription.paid before checkout.completed is attributed once", async () => {
      const user = await insertUser(sql);
      const sub = uniqueId("sub");
      const customer = uniqueId("cust");
      const now = Date.now();
      const paid = creemEvent(
        "subscription.paid",
        creemSubscription({
          id: sub,
          productId: "prod_pro_monthly",
          customer,
          email: `${uniqueId("nobody")}@elsewhere.test`,
          periodStart: iso(now - DAY),
          periodEnd: iso(now + 29 * DAY),
          transactionId: uniqueId("tran"),
        }),
      );
      assert.equal((await postCreem(base, paid)).json?.result, "failed");
      await postCreem(
        base,
        creemEvent(
          "checkout.completed",
          creemCheckout({
            productId: "prod_pro_monthly",
            customer,
            userId: user,
            subscription: sub,
          }),
        ),
      );
      assert.equal((await inboxRow(sql, "creem", paid.id)).status, "processed");
      assert.equal((await creditsOf(sql, user)).balance, 1000);
    });

    await t.step("an unknown Creem type is ignored", async () => {
      const event = creemEvent("customer.credits.granted", { id: uniqueId("x") });
      assert.equal((await postCreem(base, event)).json?.result, "ignored");
    });
  } finally {
    await server.close();
  }
});
