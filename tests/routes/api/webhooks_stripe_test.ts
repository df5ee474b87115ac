// Stripe webhooks end to end: signed event in over HTTP, balance, ledger and billing rows out.
import assert from "node:assert/strict";
import { insertUser, verifyEmail } from "../../helpers/db.ts";
import {
  creditsOf,
  inboxRow,
  postStripe,
  stripeCharge,
  stripeCheckoutSession,
  stripeDispute,
  stripeEvent,
  stripeInvoice,
  stripeSubscription,
  uniqueId,
  WEBHOOK_ENV,
} from "../../helpers/fixtures_webhooks.ts";
import { startTestServer } from "../../helpers/server.ts";

const DAY = 86_400_000;
const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString();

Deno.test("stripe webhooks apply every credit rule once", async (t) => {
  const server = await startTestServer(WEBHOOK_ENV);
  const { sql } = server.db;
  const base = server.baseUrl;
  try {
    await t.step("package: its credits once per payment, from the plans file", async () => {
      const user = await insertUser(sql);
      const session = stripeCheckoutSession({
        userId: user,
        customer: uniqueId("cus"),
        priceId: "price_pkg_standard",
        // A forged claim in metadata: neither credits nor another package count.
        metadata: { credits: "99999", package_id: "mega" },
      });
      const event = stripeEvent("checkout.session.completed", session);
      const first = await postStripe(base, event);
      assert.deepEqual(first, { status: 200, json: { received: true, result: "processed" } });
      const again = await postStripe(base, event);
      assert.deepEqual(again.json, { received: true, result: "duplicate" });
      // async_payment_succeeded for the same session pays nothing more.
      const async = await postStripe(
        base,
        stripeEvent("checkout.session.async_payment_succeeded", session),
      );
      assert.equal(async.json?.result, "processed");
      const credits = await creditsOf(sql, user);
      assert.equal(credits.balance, 200);
      assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [["package", 200]]);
      const [{ plan_id }] = await sql`select plan_id from billing.plan_of(${user})`;
      assert.equal(plan_id, "free", "a package changes no plan");
      const [customer] =
        await sql`select customer_ref from billing.customers where user_id = ${user}`;
      assert.equal(customer.customer_ref, session.customer);
    });

    await t.step(
      "without line items the price is Tally's checkout record, never metadata",
      async () => {
        const user = await insertUser(sql);
        const session = stripeCheckoutSession({
          userId: user,
          // Stripe's own event: no line items; the metadata claims the dearest price there is.
          metadata: { price_id: "price_lifetime" },
        });
        await sql`select billing.record_checkout('stripe', ${String(session.id)}, ${user},
                                               'price_pkg_standard')`;
        const result = await postStripe(base, stripeEvent("checkout.session.completed", session));
        assert.equal(result.json?.result, "processed");
        const credits = await creditsOf(sql, user);
        assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [["package", 200]]);
        const [{ plan_id }] = await sql`select plan_id from billing.plan_of(${user})`;
        assert.equal(plan_id, "free", "metadata did not buy a lifetime plan");
      },
    );

    await t.step(
      "a session with no price and no checkout record fails, granting nothing",
      async () => {
        const user = await insertUser(sql);
        const session = stripeCheckoutSession({
          userId: user,
          metadata: { price_id: "price_pkg_standard" },
        });
        const event = stripeEvent("checkout.session.completed", session);
        const result = await postStripe(base, event);
        assert.equal(result.json?.result, "failed");
        assert.equal((await creditsOf(sql, user)).balance, 0);
        const row = await inboxRow(sql, "stripe", String(event.id));
        assert.match(String(row?.error), /names no price/);
      },
    );

    await t.step("checkout paid asynchronously grants only when the payment succeeds", async () => {
      const user = await insertUser(sql);
      const session = stripeCheckoutSession({
        userId: user,
        priceId: "price_pkg_standard",
        paymentStatus: "unpaid",
      });
      const pending = await postStripe(base, stripeEvent("checkout.session.completed", session));
      assert.equal(pending.json?.result, "processed");
      assert.equal((await creditsOf(sql, user)).balance, 0);
      const paid = { ...session, payment_status: "paid" };
      await postStripe(base, stripeEvent("checkout.session.async_payment_succeeded", paid));
      assert.equal((await creditsOf(sql, user)).balance, 200);
    });

    await t.step("monthly subscription: monthlyCredits once per paid period", async () => {
      const user = await insertUser(sql);
      const sub = uniqueId("sub");
      const customer = uniqueId("cus");
      const now = Date.now();
      const first = stripeInvoice({
        subscription: sub,
        priceId: "price_pro_monthly",
        periodStart: iso(now - DAY),
        periodEnd: iso(now + 29 * DAY),
        customer,
        userId: user,
      });
      assert.equal(
        (await postStripe(base, stripeEvent("invoice.paid", first))).json?.result,
        "processed",
      );
      // The same period paid again under another event ID grants nothing.
      await postStripe(base, stripeEvent("invoice.paid", first));
      // A proration invoice inside the period grants nothing either.
      await postStripe(
        base,
        stripeEvent("invoice.paid", {
          ...first,
          id: uniqueId("in"),
          billing_reason: "subscription_update",
        }),
      );
      assert.equal((await creditsOf(sql, user)).balance, 1000);
      const [{ plan_id }] = await sql`select plan_id from billing.plan_of(${user})`;
      assert.equal(plan_id, "pro");
      // The next period (old API shape) grants again.
      const renewal = stripeInvoice({
        subscription: sub,
        priceId: "price_pro_monthly",
        periodStart: iso(now + 29 * DAY),
        periodEnd: iso(now + 59 * DAY),
        customer,
        billingReason: "subscription_cycle",
        legacy: true,
      });
      assert.equal(
        (await postStripe(base, stripeEvent("invoice.paid", renewal))).json?.result,
        "processed",
      );
      const credits = await creditsOf(sql, user);
      assert.deepEqual(credits.ledger.map((e) => e.kind), [
        "subscription_period",
        "subscription_period",
      ]);
      const [row] = await sql`select current_period_start from billing.subscriptions
                               where provider_ref = ${sub}`;
      assert.equal(row.current_period_start.toISOString(), iso(now + 29 * DAY));
    });

    await t.step("yearly subscription: slot 0 on payment, shared with the daily job", async () => {
      const user = await insertUser(sql);
      const now = Date.now();
      const invoice = stripeInvoice({
        subscription: uniqueId("sub"),
        priceId: "price_pro_yearly",
        periodStart: iso(now - 1000),
        periodEnd: iso(now + 365 * DAY),
        userId: user,
        amountPaid: 9900,
      });
      await postStripe(base, stripeEvent("invoice.paid", invoice));
      await sql`select credits.distribute_monthly(now())`;
      const credits = await creditsOf(sql, user);
      assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [[
        "subscription_monthly",
        1000,
      ]]);
    });

    await t.step("lifetime: slot 0 on payment, a dispute ends it", async () => {
      const user = await insertUser(sql);
      const pi = uniqueId("pi");
      const session = stripeCheckoutSession({
        userId: user,
        priceId: "price_lifetime",
        paymentIntent: pi,
        amount: 19900,
      });
      await postStripe(base, stripeEvent("checkout.session.completed", session));
      await sql`select credits.distribute_monthly(now())`;
      let credits = await creditsOf(sql, user);
      assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [["lifetime_monthly", 1000]]);
      const [{ plan_id }] = await sql`select plan_id from billing.plan_of(${user})`;
      assert.equal(plan_id, "lifetime");

      await sql`select credits.consume(${user}, 300, 'spent-before-dispute')`;
      const dispute = stripeEvent("charge.dispute.created", stripeDispute({ paymentIntent: pi }));
      assert.equal((await postStripe(base, dispute)).json?.result, "processed");
      credits = await creditsOf(sql, user);
      assert.equal(credits.balance, 0);
      assert.deepEqual(credits.ledger.at(-1), { kind: "dispute", amount: -700, balance_after: 0 });
      const [after] = await sql`select plan_id from billing.plan_of(${user})`;
      assert.equal(after.plan_id, "free");
    });

    await t.step("refunds remove round(granted × R ÷ P), only the further share", async () => {
      const user = await insertUser(sql);
      const pi = uniqueId("pi");
      const chargeId = uniqueId("ch");
      await postStripe(
        base,
        stripeEvent(
          "checkout.session.completed",
          stripeCheckoutSession({ userId: user, priceId: "price_pkg_standard", paymentIntent: pi }),
        ),
      );
      const refund = (total: number) =>
        stripeEvent(
          "charge.refunded",
          stripeCharge({ id: chargeId, paymentIntent: pi, amount: 1490, amountRefunded: total }),
        );
      // 500 of 1490 refunded: round(200 × 500 ÷ 1490) = 67.
      assert.equal((await postStripe(base, refund(500))).json?.result, "processed");
      assert.equal((await creditsOf(sql, user)).balance, 133);
      // A redelivery under a new event ID with the same total removes nothing more.
      await postStripe(base, refund(500));
      assert.equal((await creditsOf(sql, user)).balance, 133);
      // The user spends 100, then the rest is refunded: the further share is 200 − 67 = 133,
      // but only 33 remain unspent.
      await sql`select credits.consume(${user}, 100, 'spend-between-refunds')`;
      await postStripe(base, refund(1490));
      const credits = await creditsOf(sql, user);
      assert.equal(credits.balance, 0);
      assert.equal(credits.stored, 0);
      assert.deepEqual(
        credits.ledger.filter((e) => e.kind === "refund").map((e) => e.amount),
        [-67, -33],
      );
    });

    await t.step("trial, upgrade, downgrade and cancellation", async () => {
      const user = await insertUser(sql);
      const sub = uniqueId("sub");
      const customer = uniqueId("cus");
      const now = Date.now();
      const start = iso(now - DAY);
      const end = iso(now + 13 * DAY);
      const subscription = (
        over: Partial<Parameters<typeof stripeSubscription>[0]>,
      ) =>
        stripeSubscription({
          id: sub,
          priceId: "price_pro_monthly",
          periodStart: start,
          periodEnd: end,
          customer,
          userId: user,
          ...over,
        });
      const t0 = Math.floor(now / 1000);
      await postStripe(
        base,
        stripeEvent("customer.subscription.created", subscription({ status: "trialing" }), {
          created: t0,
        }),
      );
      // The trial's $0 first invoice grants no period.
      await postStripe(
        base,
        stripeEvent(
          "invoice.paid",
          stripeInvoice({
            subscription: sub,
            priceId: "price_pro_monthly",
            periodStart: start,
            periodEnd: end,
            customer,
            amountPaid: 0,
          }),
        ),
      );
      // A repeat of the trialing state (another event) grants no second trial.
      await postStripe(
        base,
        stripeEvent("customer.subscription.updated", subscription({ status: "trialing" }), {
          created: t0 + 1,
        }),
      );
      let credits = await creditsOf(sql, user);
      assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [["trial", 100]]);

      // The price of a plan with more credits: register one for this test.
      await sql`insert into billing.plans (id, name, kind, monthly_credits, credits_expire_days)
                values ('max', 'Max', 'subscription', 3000, 30)`;
      await sql`insert into billing.prices (price_id, provider, plan_id, interval, amount, currency)
                values ('price_max_monthly', 'stripe', 'max', 'month', 2990, 'usd')`;
      const upgraded = subscription({ status: "active", priceId: "price_max_monthly" });
      await postStripe(
        base,
        stripeEvent("customer.subscription.updated", upgraded, { created: t0 + 10 }),
      );
      await postStripe(
        base,
        stripeEvent("customer.subscription.updated", upgraded, { created: t0 + 11 }),
      );
      credits = await creditsOf(sql, user);
      assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [["trial", 100]]);
      // Its prorated invoice (billing_reason subscription_update: a credit line for pro, a charge
      // line for max) grants the difference against the plan it left (pro: 1000) once.
      const prorated = stripeEvent(
        "invoice.paid",
        stripeInvoice({
          subscription: sub,
          priceId: "price_max_monthly",
          periodStart: start,
          periodEnd: end,
          customer,
          amountPaid: 1990,
          proration: { fromPriceId: "price_pro_monthly", changedAt: iso(now) },
        }),
      );
      assert.equal((await postStripe(base, prorated)).json?.result, "processed");
      await postStripe(base, { ...prorated, id: uniqueId("evt") }); // redelivered
      credits = await creditsOf(sql, user);
      assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [["trial", 100], [
        "upgrade",
        2000,
      ]]);

      // An older event (before the upgrade) arriving late changes nothing.
      await postStripe(
        base,
        stripeEvent("customer.subscription.updated", subscription({ status: "trialing" }), {
          created: t0 + 5,
        }),
      );
      let [row] =
        await sql`select plan_id, status from billing.subscriptions where provider_ref = ${sub}`;
      assert.deepEqual({ ...row }, { plan_id: "max", status: "active" });

      // Downgrade: no credits now, and the plan changes for the next invoice.
      await postStripe(
        base,
        stripeEvent("customer.subscription.updated", subscription({}), { created: t0 + 20 }),
      );
      credits = await creditsOf(sql, user);
      assert.equal(credits.ledger.length, 2);

      // Cancellation at period end keeps the plan until then; deletion ends it, credits stay.
      await postStripe(
        base,
        stripeEvent("customer.subscription.updated", subscription({ cancelAtPeriodEnd: true }), {
          created: t0 + 30,
        }),
      );
      [row] =
        await sql`select cancel_at_period_end from billing.subscriptions where provider_ref = ${sub}`;
      assert.equal(row.cancel_at_period_end, true);
      assert.equal((await sql`select plan_id from billing.plan_of(${user})`)[0].plan_id, "pro");
      await postStripe(
        base,
        stripeEvent(
          "customer.subscription.deleted",
          subscription({ status: "canceled", canceledAt: iso(now) }),
          { created: t0 + 40 },
        ),
      );
      assert.equal((await sql`select plan_id from billing.plan_of(${user})`)[0].plan_id, "free");
      assert.equal((await creditsOf(sql, user)).balance, 2100);
    });

    await t.step(
      "invoice.paid before checkout.session.completed: attributed and granted once",
      async () => {
        const user = await insertUser(sql);
        const sub = uniqueId("sub");
        const customer = uniqueId("cus");
        const now = Date.now();
        // No metadata, an unknown customer and no email: nobody to give it to yet.
        const invoiceEvent = stripeEvent(
          "invoice.paid",
          stripeInvoice({
            subscription: sub,
            priceId: "price_pro_monthly",
            periodStart: iso(now - DAY),
            periodEnd: iso(now + 29 * DAY),
            customer,
            email: null,
          }),
        );
        const early = await postStripe(base, invoiceEvent);
        assert.equal(early.json?.result, "failed");
        assert.match(
          (await inboxRow(sql, "stripe", invoiceEvent.id)).error ?? "",
          /no matching user/,
        );
        const checkout = stripeCheckoutSession({
          userId: user,
          customer,
          mode: "subscription",
          subscription: sub,
        });
        assert.equal(
          (await postStripe(base, stripeEvent("checkout.session.completed", checkout))).json
            ?.result,
          "processed",
        );
        assert.equal((await inboxRow(sql, "stripe", invoiceEvent.id)).status, "processed");
        assert.equal((await creditsOf(sql, user)).balance, 1000);
        // The provider's redelivery of the invoice is now a duplicate.
        assert.equal((await postStripe(base, invoiceEvent)).json?.result, "duplicate");
        assert.equal((await creditsOf(sql, user)).balance, 1000);
      },
    );

    await t.step("a refund before its payment is applied when the payment arrives", async () => {
      const user = await insertUser(sql);
      const pi = uniqueId("pi");
      const refund = stripeEvent(
        "charge.refunded",
        stripeCharge({ paymentIntent: pi, amount: 1490, amountRefunded: 1490 }),
      );
      assert.equal((await postStripe(base, refund)).json?.result, "failed");
      await postStripe(
        base,
        stripeEvent(
          "checkout.session.completed",
          stripeCheckoutSession({ userId: user, priceId: "price_pkg_standard", paymentIntent: pi }),
        ),
      );
      assert.equal((await inboxRow(sql, "stripe", refund.id)).status, "processed");
      const credits = await creditsOf(sql, user);
      assert.deepEqual(credits.ledger.map((e) => [e.kind, e.amount]), [["package", 200], [
        "refund",
        -200,
      ]]);
    });

    await t.step("the user is found by customer ID, then by email", async () => {
      const email = `${uniqueId("buyer")}@test.local`;
      const user = await insertUser(sql, email);
      await verifyEmail(sql, email);
      const customer = uniqueId("cus");
      await postStripe(
        base,
        stripeEvent(
          "checkout.session.completed",
          stripeCheckoutSession({ customer, email, priceId: "price_pkg_standard" }),
        ),
      );
      await postStripe(
        base,
        stripeEvent(
          "checkout.session.completed",
          stripeCheckoutSession({ customer, priceId: "price_pkg_standard" }),
        ),
      );
      assert.equal((await creditsOf(sql, user)).balance, 400);
    });

    await t.step("ten concurrent deliveries of one event apply it once", async () => {
      const user = await insertUser(sql);
      const event = stripeEvent(
        "checkout.session.completed",
        stripeCheckoutSession({ userId: user, priceId: "price_pkg_standard" }),
      );
      const replies = await Promise.all(
        Array.from({ length: 10 }, () => postStripe(base, event)),
      );
      const results = replies.map((r) => r.json?.result).sort();
      assert.deepEqual(results, ["duplicate", ...Array(8).fill("duplicate"), "processed"].sort());
      assert.equal((await creditsOf(sql, user)).balance, 200);
    });

    await t.step("an unknown type is ignored, and its repeat is a duplicate", async () => {
      const event = stripeEvent("customer.created", { id: uniqueId("cus"), object: "customer" });
      assert.equal((await postStripe(base, event)).json?.result, "ignored");
      assert.equal((await postStripe(base, event)).json?.result, "duplicate");
    });

    await t.step(
      "an unknown price fails, is kept, and replays once the plans file has it",
      async () => {
        const user = await insertUser(sql);
        const event = stripeEvent(
          "checkout.session.completed",
          stripeCheckoutSession({ userId: user, priceId: "price_pkg_new" }),
        );
        assert.equal((await postStripe(base, event)).json?.result, "failed");
        const row = await inboxRow(sql, "stripe", event.id);
        assert.equal(row.status, "failed");
        assert.match(row.error ?? "", /unknown stripe price 'price_pkg_new'/);
        assert.equal((await creditsOf(sql, user)).balance, 0);

        const [{ plans }] = await sql<{ plans: Record<string, unknown> }[]>`
        select jsonb_build_object(
          'currency', 'usd',
          'plans', jsonb_build_array(
            jsonb_build_object('id', 'free', 'name', 'Free', 'kind', 'free', 'monthlyCredits', 50)),
          'packages', jsonb_build_array(jsonb_build_object(
            'id', 'big', 'name', 'Big', 'credits', 500,
            'prices', jsonb_build_array(jsonb_build_object(
              'provider', 'stripe', 'priceId', 'price_pkg_new', 'amount', 2990))))) as plans`;
        await sql`select billing.load_plans(${sql.json(plans as never)})`;
        const replays = await Promise.all([
          sql`select billing.replay_event('stripe', ${event.id}) as r`,
          sql`select billing.replay_event('stripe', ${event.id}) as r`,
        ]);
        assert.deepEqual(replays.map((r) => r[0].r).sort(), ["duplicate", "processed"]);
        assert.equal((await creditsOf(sql, user)).balance, 500);
        assert.equal((await inboxRow(sql, "stripe", event.id)).attempts, 2);
      },
    );
  } finally {
    await server.close();
  }
});
