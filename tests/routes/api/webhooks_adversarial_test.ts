// Adversarial webhook checks over HTTP with signed fixtures: Creem's every event type in the
// shape Creem sends (expanded product, customer, order and checkout objects; times in ISO and
// epoch milliseconds), in order and in reverse; Creem signature strictness; Stripe events out of
// order and redelivered; GET /api/me's plan after a package.
import assert from "node:assert/strict";
import type { Sql } from "../../../db/client.ts";
import { insertUser, verifyEmail } from "../../helpers/db.ts";
import {
  creditsOf,
  type CreemEvent,
  creemEvent,
  inboxCount,
  postCreem,
  postStripe,
  signCreem,
  stripeCharge,
  stripeCheckoutSession,
  stripeEvent,
  stripeInvoice,
  stripeSubscription,
  uniqueId,
  WEBHOOK_ENV,
} from "../../helpers/fixtures_webhooks.ts";
import { Client, startTestServer } from "../../helpers/server.ts";

const DAY = 86_400_000;
const NOW = Math.floor(Date.now() / 1000) * 1000;
const iso = (ms: number) => new Date(ms).toISOString();

type Json = Record<string, unknown>;

/** Creem's objects as its API documents them (creem SDK models), with the fields Tally ignores. */
function creemWorld(o: { user: string; email: string }) {
  const customerId = uniqueId("cust");
  const customer = {
    id: customerId,
    object: "customer",
    email: o.email,
    name: "Ada Tester",
    country: "NL",
    created_at: iso(NOW - 2 * DAY),
    updated_at: iso(NOW - 2 * DAY),
    mode: "test",
  };
  const product = (id: string, recurring: boolean) => ({
    id,
    object: "product",
    name: id,
    description: "",
    image_url: null,
    price: recurring ? 990 : 1490,
    currency: "USD",
    billing_type: recurring ? "recurring" : "onetime",
    billing_period: recurring ? "every-month" : "once",
    status: "active",
    tax_mode: "exclusive",
    tax_category: "saas",
    default_success_url: "",
    created_at: iso(NOW - 9 * DAY),
    updated_at: iso(NOW - 9 * DAY),
    mode: "test",
  });
  const metadata = { user_id: o.user, internal_note: "credits=99999" };
  const subId = uniqueId("sub");
  const start = NOW - DAY;
  const end = NOW + 29 * DAY;
  const subOrder = uniqueId("ord");
  const subTransaction = {
    id: uniqueId("tran"),
    object: "transaction",
    amount: 990,
    amount_paid: 990,
    discount_amount: 0,
    currency: "USD",
    type: "invoice",
    tax_country: "NL",
    tax_amount: 0,
    status: "paid",
    refunded_amount: null,
    order: subOrder,
    subscription: subId,
    customer: customerId,
    description: "Subscription payment",
    period_start: start,
    period_end: end,
    created_at: start + 5000,
    mode: "test",
  };
  const subscription = (status: string, extra: Json = {}) => ({
    id: subId,
    object: "subscription",
    product: product("prod_pro_monthly", true),
    customer,
    items: [{
      id: uniqueId("sitem"),
      object: "subscription_item",
      product_id: "prod_pro_monthly",
      price_id: uniqueId("pprice"),
      units: 1,
      created_at: iso(start),
      updated_at: iso(start),
      mode: "test",
    }],
    collection_method: "charge_automatically",
    status,
    last_transaction_id: subTransaction.id,
    last_transaction: subTransaction,
    last_transaction_date: iso(start + 5000),
    next_transaction_date: iso(end),
    current_period_start_date: iso(start),
    current_period_end_date: iso(end),
    canceled_at: null,
    created_at: iso(start),
    updated_at: iso(NOW),
    metadata,
    mode: "test",
    ...extra,
  });
  const packageOrder = {
    id: uniqueId("ord"),
    object: "order",
    customer: customerId,
    product: "prod_pkg_standard",
    transaction: uniqueId("tran"),
    amount: 1490,
    sub_total: 1490,
    tax_amount: 0,
    discount_amount: 0,
    amount_due: 1490,
    amount_paid: 1490,
    currency: "USD",
    status: "paid",
    type: "onetime",
    created_at: iso(NOW - 60_000),
    updated_at: iso(NOW - 60_000),
    mode: "test",
  };
  const packageCheckout = {
    id: uniqueId("ch"),
    object: "checkout",
    request_id: uniqueId("req"),
    product: product("prod_pkg_standard", false),
    units: 1,
    order: packageOrder,
    customer,
    custom_fields: [],
    status: "completed",
    metadata,
    mode: "test",
  };
  const subscriptionCheckout = {
    id: uniqueId("ch"),
    object: "checkout",
    request_id: uniqueId("req"),
    product: product("prod_pro_monthly", true),
    units: 1,
    order: { ...packageOrder, id: subOrder, product: "prod_pro_monthly", type: "recurring" },
    subscription: { ...subscription("active"), product: "prod_pro_monthly", customer: customerId },
    customer,
    custom_fields: [],
    status: "completed",
    metadata,
    mode: "test",
  };
  const packageTransaction = {
    id: packageOrder.transaction,
    object: "transaction",
    amount: 1490,
    amount_paid: 1490,
    currency: "USD",
    type: "payment",
    status: "refunded",
    refunded_amount: 745,
    order: packageOrder.id,
    customer: customerId,
    created_at: NOW - 60_000,
    mode: "test",
  };
  const refund = (id: string, amount: number) => ({
    id,
    object: "refund",
    status: "succeeded",
    refund_amount: amount,
    refund_currency: "USD",
    reason: "requested_by_customer",
    transaction: packageTransaction,
    checkout: packageCheckout.id,
    order: packageOrder,
    customer,
    created_at: NOW,
    mode: "test",
  });
  const dispute = {
    id: uniqueId("disp"),
    object: "dispute",
    amount: 1490,
    currency: "USD",
    transaction: { ...packageTransaction, status: "chargeback" },
    checkout: packageCheckout,
    order: packageOrder.id,
    customer: customerId,
    created_at: NOW,
    mode: "test",
  };
  let clock = NOW - 30 * 60_000;
  const next = (type: string, object: Json) =>
    creemEvent(type, object, { createdAt: clock += 1000 });
  const refundId = uniqueId("ref");
  // Every event type of the contract, in the order Creem would send them.
  const events: CreemEvent[] = [
    next("checkout.completed", subscriptionCheckout),
    next("subscription.active", subscription("active")),
    next("subscription.paid", subscription("active")),
    next("subscription.update", subscription("active")),
    next("subscription.past_due", subscription("past_due")),
    next("subscription.active", subscription("active")),
    next("subscription.paused", subscription("paused")),
    next("subscription.unpaid", subscription("unpaid")),
    next("subscription.active", subscription("active")),
    next("subscription.scheduled_cancel", subscription("scheduled_cancel")),
    next("checkout.completed", packageCheckout),
    next("refund.created", refund(refundId, 745)),
    // The same refund again under another event ID (a resend from Creem's dashboard).
    next("refund.created", refund(refundId, 745)),
    next("dispute.created", dispute),
  ];
  const trialing = next("subscription.trialing", {
    ...subscription("trialing"),
    id: uniqueId("sub"),
    last_transaction: undefined,
    last_transaction_id: undefined,
  });
  const ending = [
    next("subscription.canceled", subscription("canceled", { canceled_at: iso(NOW) })),
    next("subscription.expired", subscription("expired", { canceled_at: iso(NOW) })),
  ];
  return { subId, events, trialing, ending };
}

async function stateOf(sql: Sql, user: string) {
  const credits = await creditsOf(sql, user);
  const subs = await sql`select plan_id, status, current_period_start, current_period_end,
                                cancel_at_period_end
                           from billing.subscriptions where user_id = ${user} order by id`;
  const payments = await sql<Json[]>`select kind, amount::int, refunded_amount::int,
                                    disputed_at is not null as disputed
                               from billing.payments where user_id = ${user} order by kind`;
  return {
    balance: credits.balance,
    stored: credits.stored,
    subs: [...subs],
    payments: [...payments],
  };
}

Deno.test("creem: every event type, in order and in reverse, ends the same", async (t) => {
  const server = await startTestServer(WEBHOOK_ENV);
  const { sql } = server.db;
  const base = server.baseUrl;
  const newUser = async () => {
    const email = `${uniqueId("creem")}@test.local`;
    return { user: await insertUser(sql, email), email };
  };
  try {
    const forward = await newUser();
    const world = creemWorld(forward);
    const reverse = await newUser();
    const mirror = creemWorld(reverse);

    await t.step("in order: each event applies; the refund ID counts once", async () => {
      const results = [];
      for (const event of world.events) results.push((await postCreem(base, event)).json?.result);
      assert.deepEqual(results, Array(world.events.length).fill("processed"));
      const credits = await creditsOf(sql, forward.user);
      assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [
        ["subscription_period", 1000],
        ["package", 200],
        ["refund", -100],
        ["dispute", -100],
      ]);
      const [row] = await sql`select status, cancel_at_period_end from billing.subscriptions
                               where provider_ref = ${world.subId}`;
      assert.deepEqual(row, { status: "active", cancel_at_period_end: true });
      assert.equal((await postCreem(base, world.trialing)).json?.result, "processed");
      assert.equal((await creditsOf(sql, forward.user)).balance, 1100, "trialCredits once");
      for (const event of world.ending) {
        assert.equal((await postCreem(base, event)).json?.result, "processed");
      }
    });

    await t.step(
      "in reverse: failed until their payment or user arrives, then the same",
      async () => {
        const all = [...mirror.events, mirror.trialing, ...mirror.ending].reverse();
        for (const event of all) assert.equal((await postCreem(base, event)).status, 200);
        const failed =
          await sql`select event_id from billing.webhook_events where status = 'failed'`;
        assert.deepEqual([...failed], []);
        const a = await stateOf(sql, forward.user);
        const b = await stateOf(sql, reverse.user);
        assert.deepEqual(b, a);
        assert.equal(a.balance, 1100);
        assert.equal(a.subs[0].status, "expired");
      },
    );
  } finally {
    await server.close();
  }
});

Deno.test("creem-signature: exact lowercase hex of the body under the right key", async () => {
  const server = await startTestServer(WEBHOOK_ENV);
  try {
    const { sql } = server.db;
    const user = await insertUser(sql);
    const { events } = creemWorld({ user, email: "sig@test.local" });
    const body = JSON.stringify(events[0]);
    const wrongKey = await signCreem(body, "whsec_someone_else");
    assert.match(wrongKey, /^[0-9a-f]{64}$/);
    const refused = await postCreem(server.baseUrl, body, { signature: wrongKey });
    assert.equal(refused.status, 400);
    assert.equal(refused.json?.error, "invalid_request");
    // Creem sends lowercase hex; another spelling of the same MAC is not what it sends.
    const upper = await postCreem(server.baseUrl, body, {
      signature: (await signCreem(body)).toUpperCase(),
    });
    assert.equal(upper.status, 400);
    const truncated = await postCreem(server.baseUrl, body, {
      signature: (await signCreem(body)).slice(0, 63),
    });
    assert.equal(truncated.status, 400);
    assert.equal(await inboxCount(sql), 0);
    assert.equal((await postCreem(server.baseUrl, body)).status, 200);
  } finally {
    await server.close();
  }
});

Deno.test("stripe: out of order and redelivered events end as in order", async (t) => {
  const server = await startTestServer(WEBHOOK_ENV);
  const { sql } = server.db;
  const base = server.baseUrl;
  try {
    await t.step("invoice.paid before the checkout that names its customer", async () => {
      const user = await insertUser(sql);
      const customer = uniqueId("cus");
      const sub = uniqueId("sub");
      const invoice = stripeEvent(
        "invoice.paid",
        stripeInvoice({
          subscription: sub,
          priceId: "price_pro_monthly",
          periodStart: iso(NOW - DAY),
          periodEnd: iso(NOW + 29 * DAY),
          customer,
          email: "someone-else@elsewhere.test",
        }),
      );
      assert.equal((await postStripe(base, invoice)).json?.result, "failed");
      const checkout = stripeEvent(
        "checkout.session.completed",
        stripeCheckoutSession({ userId: user, customer, mode: "subscription", subscription: sub }),
      );
      assert.equal((await postStripe(base, checkout)).json?.result, "processed");
      assert.equal((await postStripe(base, invoice)).json?.result, "duplicate");
      assert.deepEqual((await creditsOf(sql, user)).ledger.map((e) => [e.kind, e.amount]), [[
        "subscription_period",
        1000,
      ]]);
    });

    await t.step("trialing subscription: trialCredits once", async () => {
      const user = await insertUser(sql);
      const trial = (created: number) =>
        stripeEvent(
          created === 0 ? "customer.subscription.created" : "customer.subscription.updated",
          stripeSubscription({
            id: "sub_trial_" + user.slice(0, 8),
            priceId: "price_pro_monthly",
            periodStart: iso(NOW),
            periodEnd: iso(NOW + 14 * DAY),
            status: "trialing",
            userId: user,
          }),
          { created: NOW / 1000 + created },
        );
      await postStripe(base, trial(1)); // the update before the creation
      await postStripe(base, trial(0));
      await postStripe(base, trial(2));
      assert.deepEqual((await creditsOf(sql, user)).ledger.map((e) => [e.kind, e.amount]), [[
        "trial",
        100,
      ]]);
    });

    await t.step("charge.refunded twice and out of order removes once", async () => {
      const client = new Client(base);
      const { id: user } = await client.signup();
      const pi = uniqueId("pi");
      const charge = uniqueId("ch");
      await postStripe(
        base,
        stripeEvent(
          "checkout.session.completed",
          stripeCheckoutSession({ userId: user, priceId: "price_pkg_standard", paymentIntent: pi }),
        ),
      );
      const me = await client.request("GET", "/api/me");
      const plan = (me.json as { plan: { id: string; kind: string } }).plan;
      assert.deepEqual([plan.id, plan.kind], ["free", "free"], "a package changes no plan");
      const start = (await creditsOf(sql, user)).balance;
      const refunded = (total: number) =>
        stripeEvent(
          "charge.refunded",
          stripeCharge({ id: charge, paymentIntent: pi, amount: 1490, amountRefunded: total }),
        );
      const newer = refunded(1490);
      await postStripe(base, newer);
      await postStripe(base, refunded(745)); // the older figure, late
      await postStripe(base, newer); // redelivered
      await postStripe(base, refunded(1490)); // the same figure under another event ID
      const credits = await creditsOf(sql, user);
      assert.equal(credits.balance, start - 200);
      assert.deepEqual(credits.ledger.filter((e) => e.kind === "refund").map((e) => e.amount), [
        -200,
      ]);
    });
  } finally {
    await server.close();
  }
});

Deno.test("a payment matched by email alone goes to a verified address only", async () => {
  const server = await startTestServer(WEBHOOK_ENV);
  const { sql } = server.db;
  try {
    // Someone signed up first with the buyer's address and never verified it.
    const email = `${uniqueId("buyer")}@test.local`;
    const squatter = await insertUser(sql, email);
    const paid = (email: string) =>
      stripeEvent(
        "checkout.session.completed",
        stripeCheckoutSession({ email, priceId: "price_pkg_standard", customer: null }),
      );
    const event = paid(` ${email.toUpperCase()} `);
    assert.equal((await postStripe(server.baseUrl, event)).json?.result, "failed");
    const [row] = await sql<{ error: string }[]>`
      select error from billing.webhook_events where event_id = ${event.id}`;
    assert.match(row.error, /no matching user/);
    assert.deepEqual([...(await creditsOf(sql, squatter)).ledger], []);

    // Once the address is verified, the kept event applies on replay, and new ones match.
    await verifyEmail(sql, email);
    const [{ result }] = await sql<{ result: string }[]>`
      select billing.replay_event('stripe', ${event.id}) as result`;
    assert.equal(result, "processed");
    assert.equal((await postStripe(server.baseUrl, paid(email))).json?.result, "processed");
    assert.deepEqual((await creditsOf(sql, squatter)).ledger.map((e) => [e.kind, e.amount]), [
      ["package", 200],
      ["package", 200],
    ]);
  } finally {
    await server.close();
  }
});
