// Money that must not be minted (docs/credit-rules.md): a yearly plan's later slots after a refund
// or a dispute of the year's payment, a lifetime purchase after any refund, and upgrades within
// one period, in every order of their events, through the real Stripe and Creem adapters.
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { normalizeCreemEvent } from "../../providers/creem_events.ts";
import { normalizeStripeEvent } from "../../providers/stripe_events.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";
import { assertBooksAgree } from "../helpers/books.ts";
import {
  creemEvent,
  creemSubscription,
  stripeEvent,
  stripeInvoice,
  stripeSubscription,
  uniqueId,
} from "../helpers/fixtures_webhooks.ts";
import {
  applyEvent,
  at,
  balanceOf,
  buyLifetime,
  DAY,
  dispute,
  type Json,
  periodPaid,
  planOf,
  ref,
  refundTotal,
  subscriptionChanged,
  upgradePaid,
  who,
} from "../helpers/neutral_events.ts";

async function grantsOf(sql: Sql, user: string, kind: string): Promise<number[]> {
  const rows = await sql<{ amount: number }[]>`
    select (amount - coalesce((select -sum(l.amount) from credits.ledger l
                                where l.user_id = g.user_id and l.grant_id = g.id
                                  and l.kind in ('refund', 'dispute')), 0))::int as amount
      from credits.grants g where g.user_id = ${user} and g.kind = ${kind} order by g.id`;
  return rows.map((r) => r.amount);
}

const distribute = (sql: Sql, now: string) =>
  sql`select credits.distribute_monthly(${now}::timestamptz)`;

Deno.test("a yearly plan's later slots shrink with refunds and end with a dispute", async (t) => {
  await withDatabase(async ({ sql }) => {
    // A yearly pro subscription (1000 a month, P = 9900) paid at the start of its year.
    const subscribe = async () => {
      const user = await insertUser(sql);
      const payment = ref("in");
      const event = periodPaid({
        customer: who(user),
        sub: ref("sub"),
        priceId: "price_pro_yearly",
        start: at(0),
        end: at(365 * DAY),
        payment,
        amount: 9900,
      });
      assert.equal(await applyEvent(sql, event), "processed");
      return { user, payment };
    };

    await t.step(
      "refunded in half: the later slots grant 500, another refund takes its share",
      async () => {
        const { user, payment } = await subscribe();
        await applyEvent(sql, refundTotal(payment, 4950));
        assert.deepEqual(await grantsOf(sql, user, "subscription_monthly"), [500]);
        await distribute(sql, at(32 * DAY));
        await distribute(sql, at(32 * DAY)); // a repeated run grants nothing more
        assert.deepEqual(await grantsOf(sql, user, "subscription_monthly"), [500, 500]);
        // R = 3/4 of P: each slot keeps round(1000 × 1/4) = 250.
        await applyEvent(sql, refundTotal(payment, 7425));
        assert.deepEqual(await grantsOf(sql, user, "subscription_monthly"), [250, 250]);
        await distribute(sql, at(63 * DAY));
        assert.deepEqual(await grantsOf(sql, user, "subscription_monthly"), [250, 250, 250]);
        // Each slot's credits expire after 30 days: on day 63 only slot 2 is left.
        assert.equal(await balanceOf(sql, user, at(63 * DAY)), 250);
        await assertBooksAgree(sql, user);
      },
    );

    for (const end of ["full refund", "dispute"] as const) {
      await t.step(`a ${end} ends the year's later slots`, async () => {
        const { user, payment } = await subscribe();
        await applyEvent(sql, end === "dispute" ? dispute(payment) : refundTotal(payment, 9900));
        assert.equal(await balanceOf(sql, user), 0);
        for (let month = 1; month <= 11; month++) await distribute(sql, at(month * 31 * DAY));
        assert.deepEqual(await grantsOf(sql, user, "subscription_monthly"), [0]);
        await assertBooksAgree(sql, user);
      });
    }
  });
});

Deno.test("a lifetime purchase ends with any refund, however small", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const payment = await buyLifetime(sql, user);
    // 99.99 % refunded: round(1000 × 19899 ÷ 19900) = 1000 of slot 0 removed.
    await applyEvent(sql, refundTotal(payment, 19899));
    await distribute(sql, at(32 * DAY));
    await distribute(sql, at(63 * DAY));
    assert.deepEqual(await grantsOf(sql, user, "lifetime_monthly"), [0]);
    assert.equal(await planOf(sql, user, at(63 * DAY)), "free");
    // A one-cent refund of another purchase ends it too.
    const other = await insertUser(sql);
    const small = await buyLifetime(sql, other);
    await applyEvent(sql, refundTotal(small, 1));
    await distribute(sql, at(32 * DAY));
    assert.deepEqual(await grantsOf(sql, other, "lifetime_monthly"), [1000]);
    assert.equal(await planOf(sql, other), "free");
    await assertBooksAgree(sql, user);
    await assertBooksAgree(sql, other);
  });
});

/** plans.json plus basic (100 a month) and max (5000 a month), monthly on both providers. */
async function loadThreePlans(sql: Sql): Promise<void> {
  const doc = JSON.parse(await Deno.readTextFile(new URL("../../plans.json", import.meta.url)));
  const plan = (id: string, credits: number, amount: number) => ({
    id,
    name: id,
    kind: "subscription",
    monthlyCredits: credits,
    creditsExpireInDays: 30,
    prices: [
      { provider: "stripe", priceId: `price_${id}_monthly`, interval: "month", amount },
      { provider: "creem", priceId: `prod_${id}_monthly`, interval: "month", amount },
      { provider: "stripe", priceId: `price_${id}_yearly`, interval: "year", amount: amount * 10 },
    ],
  });
  doc.plans.splice(1, 0, plan("basic", 100, 190), plan("max", 5000, 4990));
  await sql`select billing.load_plans(${JSON.stringify(doc)}::text::jsonb)`;
}

const PLAN_CREDITS: Record<string, number> = { basic: 100, pro: 1000, max: 5000 };

/** One provider event of the period, turned into the neutral shape by the real adapter; `pays`
 * names the plan whose payment it reports. */
type PeriodEvent = { name: string; pays: string | null; neutral: Json };

/** The events of one monthly period, in order: basic paid, update to max, max's prorated
 * payment, update back to basic (a downgrade, no payment), update to pro, pro's payment. */
function periodEvents(provider: "stripe" | "creem", user: string): PeriodEvent[] {
  const sub = uniqueId("sub");
  const customer = uniqueId("cus");
  const start = at(-DAY);
  const end = at(29 * DAY);
  const minute = (n: number) => at(n * 60_000);
  if (provider === "stripe") {
    const price = (plan: string) => `price_${plan}_monthly`;
    const invoice = (plan: string, from?: { plan: string; at: string }, amountPaid = 190) =>
      normalizeStripeEvent(stripeEvent(
        "invoice.paid",
        stripeInvoice({
          subscription: sub,
          priceId: price(plan),
          periodStart: start,
          periodEnd: end,
          customer,
          userId: user,
          amountPaid,
          proration: from ? { fromPriceId: price(from.plan), changedAt: from.at } : undefined,
        }),
      )).event as Json;
    const update = (plan: string, n: number) =>
      normalizeStripeEvent(stripeEvent(
        "customer.subscription.updated",
        stripeSubscription({
          id: sub,
          priceId: price(plan),
          periodStart: start,
          periodEnd: end,
          customer,
          userId: user,
        }),
        { created: Math.floor(Date.parse(minute(n)) / 1000) },
      )).event as Json;
    return [
      { name: "basic paid", pays: "basic", neutral: invoice("basic") },
      { name: "to max", pays: null, neutral: update("max", 10) },
      {
        name: "max paid",
        pays: "max",
        neutral: invoice("max", { plan: "basic", at: minute(10) }, 4800),
      },
      { name: "to basic", pays: null, neutral: update("basic", 20) },
      { name: "to pro", pays: null, neutral: update("pro", 30) },
      {
        name: "pro paid",
        pays: "pro",
        neutral: invoice("pro", { plan: "basic", at: minute(30) }, 700),
      },
    ];
  }
  const product = (plan: string) => `prod_${plan}_monthly`;
  const subscription = (
    plan: string,
    o: { transaction?: string; from?: string; amount?: number },
  ) =>
    creemSubscription({
      id: sub,
      productId: product(plan),
      customer,
      periodStart: start,
      periodEnd: end,
      userId: user,
      transactionId: o.transaction,
      transactionFrom: o.from,
      amount: o.amount,
    });
  const paid = (plan: string, from?: string, amount = 190) =>
    normalizeCreemEvent(
      creemEvent(
        "subscription.paid",
        subscription(plan, { transaction: uniqueId("tran"), from, amount }),
      ),
    ).event as Json;
  const update = (plan: string, n: number) =>
    normalizeCreemEvent(
      creemEvent("subscription.update", subscription(plan, {}), {
        createdAt: Date.parse(minute(n)),
      }),
    ).event as Json;
  return [
    { name: "basic paid", pays: "basic", neutral: paid("basic") },
    { name: "to max", pays: null, neutral: update("max", 10) },
    { name: "max paid", pays: "max", neutral: paid("max", minute(10), 4800) },
    { name: "to basic", pays: null, neutral: update("basic", 20) },
    { name: "to pro", pays: null, neutral: update("pro", 30) },
    { name: "pro paid", pays: "pro", neutral: paid("pro", minute(30), 700) },
  ];
}

function* permutations<T>(items: T[]): Generator<T[]> {
  if (items.length <= 1) {
    yield items;
    return;
  }
  for (let i = 0; i < items.length; i++) {
    const rest = [...items.slice(0, i), ...items.slice(i + 1)];
    for (const tail of permutations(rest)) yield [items[i], ...tail];
  }
}

/** What the period's subscription grants added up to (period and upgrade grants). */
async function periodCredits(sql: Sql, user: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select coalesce(sum(amount), 0)::int as n from credits.grants
     where user_id = ${user} and kind in ('subscription_period', 'upgrade', 'trial')`;
  return row.n;
}

Deno.test("plan flapping within a period never grants more than the richest plan paid", async (t) => {
  await withDatabase(async ({ sql }) => {
    await loadThreePlans(sql);
    for (const provider of ["stripe", "creem"] as const) {
      await t.step(`${provider}: every order of the period's six events`, async () => {
        const orders = [...permutations([0, 1, 2, 3, 4, 5])];
        assert.equal(orders.length, 720);
        for (const order of orders) {
          const user = await insertUser(sql);
          const events = periodEvents(provider, user);
          let richestPaid = 0;
          for (const index of order) {
            const event = events[index];
            const result = await applyEvent(sql, event.neutral, { provider });
            assert.ok(["processed", "failed"].includes(result), `${event.name}: ${result}`);
            if (event.pays) richestPaid = Math.max(richestPaid, PLAN_CREDITS[event.pays]);
            const granted = await periodCredits(sql, user);
            assert.ok(
              granted <= richestPaid,
              `${
                order.map((i) => events[i].name)
              }: ${granted} granted, richest paid ${richestPaid}`,
            );
          }
          const label = order.map((i) => events[i].name).join(", ");
          assert.equal(await periodCredits(sql, user), 5000, label);
          assert.equal(await balanceOf(sql, user), 5000, label);
          const [row] = await sql`select plan_id, status from billing.subscriptions
                                   where user_id = ${user}`;
          assert.deepEqual({ ...row }, { plan_id: "pro", status: "active" }, label);
          const [failed] = await sql<{ n: number }[]>`
            select count(*)::int as n from billing.webhook_events
             where event ->> 'subscriptionRef' = ${String(events[0].neutral.subscriptionRef)}
               and status = 'failed'`;
          assert.equal(failed.n, 0, label);
          await assertBooksAgree(sql, user);
        }
      });
    }

    for (const provider of ["stripe", "creem"] as const) {
      await t.step(`${provider}: the six events at once, each delivered twice`, async () => {
        for (let round = 0; round < 10; round++) {
          const user = await insertUser(sql);
          const events = periodEvents(provider, user);
          // Twelve parallel requests on the pool's connections; a delivery that ran before its
          // period was known is retried by the event that made it known.
          await Promise.all(
            [...events, ...events].map((e) =>
              applyEvent(sql, e.neutral, { provider, id: `evt_${round}_${e.name}_${user}` })
            ),
          );
          assert.equal(await periodCredits(sql, user), 5000);
          assert.equal(await balanceOf(sql, user), 5000);
          await assertBooksAgree(sql, user);
        }
      });
    }

    await t.step("a yearly plan's later slots follow the plans paid for, not the row", async () => {
      const user = await insertUser(sql);
      const customer = who(user);
      const sub = ref("sub");
      const end = at(365 * DAY);
      await applyEvent(
        sql,
        periodPaid({
          customer,
          sub,
          priceId: "price_pro_yearly",
          start: at(0),
          end,
          payment: ref("in"),
        }),
      );
      // Moved to max without paying for it (say, a proration left for the next invoice).
      const toMax = (minutes: number) =>
        subscriptionChanged({
          customer,
          sub,
          priceId: "price_max_yearly",
          status: "active",
          start: at(0),
          end,
          occurredAt: at(minutes * 60_000),
        });
      await applyEvent(sql, toMax(10));
      await distribute(sql, at(32 * DAY));
      assert.deepEqual(await grantsOf(sql, user, "subscription_monthly"), [1000, 1000]);
      // Its payment: the difference once, and max from the next slot on.
      const upgradePayment = ref("in");
      await applyEvent(
        sql,
        upgradePaid({
          customer,
          sub,
          priceId: "price_max_yearly",
          fromPriceId: "price_pro_yearly",
          changedAt: at(40 * DAY),
          end,
          payment: upgradePayment,
        }),
      );
      assert.deepEqual(await grantsOf(sql, user, "upgrade"), [4000]);
      await distribute(sql, at(63 * DAY));
      assert.deepEqual(await grantsOf(sql, user, "subscription_monthly"), [1000, 1000, 5000]);
      // The upgrade's payment disputed: it takes the upgrade back, and the slots are pro again.
      await applyEvent(sql, dispute(upgradePayment));
      await distribute(sql, at(94 * DAY));
      assert.deepEqual(await grantsOf(sql, user, "upgrade"), [0]);
      assert.deepEqual(await grantsOf(sql, user, "subscription_monthly"), [
        1000,
        1000,
        5000,
        1000,
      ]);
      await assertBooksAgree(sql, user);
    });

    await t.step("an upgrade grants only once its payment is reported", async () => {
      const user = await insertUser(sql);
      const [basicPaid, toMax, maxPaid] = periodEvents("stripe", user);
      await applyEvent(sql, basicPaid.neutral);
      await applyEvent(sql, toMax.neutral);
      assert.equal(await balanceOf(sql, user), 100);
      await applyEvent(sql, maxPaid.neutral);
      await applyEvent(sql, maxPaid.neutral, { id: ref("evt") }); // redelivered
      assert.equal(await balanceOf(sql, user), 5000);
    });
  });
});

Deno.test("Stripe: how an invoice names the plan and the period it pays", () => {
  const start = at(-DAY);
  const end = at(29 * DAY);
  const next = at(59 * DAY);
  const neutral = (invoice: Record<string, unknown>) =>
    normalizeStripeEvent(stripeEvent("invoice.paid", invoice)).event as Json;
  // A change invoiced at once: the charge line names the new plan, the credit line the old one.
  const upgrade = neutral(stripeInvoice({
    subscription: "sub_x",
    priceId: "price_max_monthly",
    periodStart: start,
    periodEnd: end,
    amountPaid: 4800,
    proration: { fromPriceId: "price_basic_monthly", changedAt: at(0) },
  }));
  assert.deepEqual(
    [upgrade.priceId, upgrade.fromPriceId, upgrade.paysUpgrade, upgrade.grantsPeriod],
    ["price_max_monthly", "price_basic_monthly", true, false],
  );
  assert.deepEqual([upgrade.periodStart, upgrade.periodEnd], [at(0), end]);
  // A renewal that carries an earlier change's prorations first pays the new period.
  const renewal = stripeInvoice({
    subscription: "sub_x",
    priceId: "price_pro_monthly",
    periodStart: end,
    periodEnd: next,
    billingReason: "subscription_cycle",
  }) as { lines: { data: unknown[] } };
  const proration = stripeInvoice({
    subscription: "sub_x",
    priceId: "price_max_monthly",
    periodStart: start,
    periodEnd: end,
    proration: { fromPriceId: "price_basic_monthly", changedAt: at(0) },
  }) as { lines: { data: unknown[] } };
  renewal.lines.data = [...proration.lines.data, ...renewal.lines.data];
  const paid = neutral(renewal);
  assert.deepEqual(
    [paid.priceId, paid.periodStart, paid.periodEnd, paid.grantsPeriod, paid.paysUpgrade],
    ["price_pro_monthly", end, next, true, false],
  );
});
