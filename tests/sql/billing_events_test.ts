// Adversarial checks of the payment credit rules (docs/credit-rules.md) at the SQL boundary:
// billing.apply_event with events in the provider-neutral shape, the clock moved with p_now.
// Every step ends with the ledger, the balance row and the grants agreeing.
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";
import { assertBooksAgree } from "../helpers/books.ts";
import {
  applyEvent,
  at,
  balanceOf,
  buyLifetime,
  checkoutPaid,
  DAY,
  dispute,
  type Json,
  periodPaid,
  planOf,
  ref,
  refundAmount,
  refundTotal,
  subscriptionChanged,
  upgradePaid,
  who,
} from "../helpers/neutral_events.ts";

async function removed(sql: Sql, user: string, kind: "refund" | "dispute"): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select coalesce(-sum(amount), 0)::int as n from credits.ledger
     where user_id = ${user} and kind = ${kind}`;
  return row.n;
}

async function kinds(sql: Sql, user: string): Promise<[string, number][]> {
  const rows = await sql<{ kind: string; amount: number }[]>`
    select kind, amount::int from credits.ledger where user_id = ${user} order by id`;
  return rows.map((r) => [r.kind, r.amount]);
}

/** plans.json plus a "basic" plan (300 a month, no trialCredits) for upgrades and downgrades. */
async function loadPlansWithBasic(sql: Sql): Promise<void> {
  const doc = JSON.parse(await Deno.readTextFile(new URL("../../plans.json", import.meta.url)));
  doc.plans.splice(1, 0, {
    id: "basic",
    name: "Basic",
    kind: "subscription",
    monthlyCredits: 300,
    creditsExpireInDays: 30,
    prices: [
      { provider: "stripe", priceId: "price_basic_monthly", interval: "month", amount: 490 },
      { provider: "creem", priceId: "prod_basic_monthly", interval: "month", amount: 490 },
    ],
  });
  await sql`select billing.load_plans(${JSON.stringify(doc)}::text::jsonb)`;
}

Deno.test("refunds of a package remove round(G × R ÷ P) in all, never twice", async (t) => {
  await withDatabase(async ({ sql }) => {
    const buy = async () => {
      const user = await insertUser(sql);
      const payment = ref("pi");
      const result = await applyEvent(
        sql,
        checkoutPaid({ user, priceId: "price_pkg_standard", payment, amount: 1490 }),
      );
      assert.equal(result, "processed");
      assert.equal(await balanceOf(sql, user), 200);
      return { user, payment };
    };

    await t.step("745 of 1490 removes 100; the rest of the refund the other 100", async () => {
      const { user, payment } = await buy();
      assert.equal(await applyEvent(sql, refundTotal(payment, 745)), "processed");
      assert.equal(await balanceOf(sql, user), 100);
      assert.equal(await applyEvent(sql, refundTotal(payment, 1490)), "processed");
      assert.equal(await balanceOf(sql, user), 0);
      assert.equal(await removed(sql, user, "refund"), 200);
      await assertBooksAgree(sql, user);
    });

    await t.step("Stripe's cumulative total: twice, and newer before older", async () => {
      const { user, payment } = await buy();
      await applyEvent(sql, refundTotal(payment, 745));
      await applyEvent(sql, refundTotal(payment, 745)); // redelivered under another event ID
      assert.equal(await balanceOf(sql, user), 100);
      const { user: other, payment: otherPayment } = await buy();
      await applyEvent(sql, refundTotal(otherPayment, 1490)); // the newer figure first
      await applyEvent(sql, refundTotal(otherPayment, 745)); // the older one late
      await applyEvent(sql, refundTotal(otherPayment, 1490));
      assert.equal(await balanceOf(sql, other), 0);
      assert.equal(await removed(sql, other, "refund"), 200);
      await assertBooksAgree(sql, user);
      await assertBooksAgree(sql, other);
    });

    await t.step("one refund ID counted once, whatever event delivers it", async () => {
      const { user, payment } = await buy();
      const refundRef = ref("re");
      assert.equal(
        await applyEvent(sql, refundAmount(payment, 745, refundRef), { provider: "stripe" }),
        "processed",
      );
      // The same refund delivered again under a new event ID: not a second refund of 745.
      await applyEvent(sql, refundAmount(payment, 745, refundRef));
      assert.equal(await balanceOf(sql, user), 100);
      const [row] = await sql`select refunded_amount::int as r, refunded_at from billing.payments
                               where provider_ref = ${payment}`;
      assert.deepEqual(row, { r: 745, refunded_at: null });
      // A different refund of the other half removes the other 100.
      await applyEvent(sql, refundAmount(payment, 745, ref("re")));
      assert.equal(await balanceOf(sql, user), 0);
      assert.equal(await removed(sql, user, "refund"), 200);
      await assertBooksAgree(sql, user);
    });

    await t.step("after spending, a refund removes only what remains", async () => {
      const { user, payment } = await buy();
      await sql`select credits.consume(${user}, 150, ${ref("use")}, null, ${at(0)})`;
      await applyEvent(sql, refundTotal(payment, 745));
      assert.equal(await balanceOf(sql, user), 0);
      assert.equal(await removed(sql, user, "refund"), 50);
      await applyEvent(sql, refundTotal(payment, 1490));
      assert.equal(await balanceOf(sql, user), 0);
      assert.equal(await removed(sql, user, "refund"), 50);
      await assertBooksAgree(sql, user);
    });

    await t.step("a refund larger than the payment is capped at it", async () => {
      const { user, payment } = await buy();
      await applyEvent(sql, refundTotal(payment, 99999));
      assert.equal(await removed(sql, user, "refund"), 200);
      const [row] = await sql`select refunded_amount::int as r from billing.payments
                               where provider_ref = ${payment}`;
      assert.equal(row.r, 1490);
      await assertBooksAgree(sql, user);
    });
  });
});

Deno.test("a lifetime refund reaches every month slot, rounds in all, ends the slots", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const payment = await buyLifetime(sql, user);
    // The daily job makes slots 1 and 2 later.
    await sql`select credits.distribute_monthly(${at(32 * DAY)}::timestamptz)`;
    await sql`select credits.distribute_monthly(${at(62 * DAY)}::timestamptz)`;
    const slots = await sql`select source_key from credits.grants
                             where user_id = ${user} and kind = 'lifetime_monthly'`;
    assert.equal(slots.length, 3);
    assert.equal(await balanceOf(sql, user), 3000);

    // G = 3000, P = 19900, R = 6633: round(3000 × 6633 ÷ 19900) = round(999.95) = 1000 in all
    // (rounding each 1000-credit slot alone would remove 3 × 333 = 999).
    await applyEvent(sql, refundTotal(payment, 6633));
    assert.equal(await removed(sql, user, "refund"), 1000);
    // Any refund, also a partial one, ends the purchase: no further slot, the free plan.
    assert.equal(await planOf(sql, user), "free", "a partial refund ends the purchase");
    await sql`select credits.distribute_monthly(${at(93 * DAY)}::timestamptz)`;

    await applyEvent(sql, refundTotal(payment, 19900));
    assert.equal(await removed(sql, user, "refund"), 3000);
    assert.equal(await balanceOf(sql, user), 50, "only the free plan's credits of day 93 are left");
    const perSlot = await sql<{ n: number }[]>`
      select coalesce(-sum(l.amount), 0)::int as n from credits.grants g
        left join credits.ledger l on l.grant_id = g.id and l.kind = 'refund'
       where g.user_id = ${user} and g.kind = 'lifetime_monthly' group by g.id order by g.id`;
    assert.deepEqual(perSlot.map((r) => r.n), [1000, 1000, 1000]);

    await sql`select credits.distribute_monthly(${at(124 * DAY)}::timestamptz)`;
    assert.deepEqual((await kinds(sql, user)).filter(([k]) => k === "lifetime_monthly").length, 3);
    assert.equal(await planOf(sql, user, at(124 * DAY)), "free");
    assert.deepEqual((await kinds(sql, user)).at(-1), ["free_monthly", 50]);
    await assertBooksAgree(sql, user);
  });
});

Deno.test("a refund of a subscription period payment removes that period's credits", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const sub = ref("sub");
    const first = ref("in");
    const second = ref("in");
    const base = { customer: who(user), sub, priceId: "price_pro_monthly" };
    await applyEvent(
      sql,
      periodPaid({ ...base, start: at(-DAY), end: at(29 * DAY), payment: first }),
    );
    await applyEvent(
      sql,
      periodPaid({ ...base, start: at(29 * DAY), end: at(59 * DAY), payment: second }),
      { now: at(29 * DAY) },
    );
    assert.equal(await balanceOf(sql, user), 2000);
    // Half of the second invoice: 500 of that period's 1000; the first period is untouched.
    await applyEvent(sql, refundTotal(second, 495));
    assert.equal(await removed(sql, user, "refund"), 500);
    const rows = await sql<{ remaining: number }[]>`
      select remaining::int from credits.grants where user_id = ${user} order by id`;
    assert.deepEqual(rows.map((r) => r.remaining), [1000, 500]);
    await assertBooksAgree(sql, user);
  });
});

Deno.test("a dispute takes every unspent credit of the payment, with a refund in either order", async (t) => {
  await withDatabase(async ({ sql }) => {
    for (const order of ["refund first", "dispute first"]) {
      await t.step(order, async () => {
        const user = await insertUser(sql);
        const payment = ref("pi");
        await applyEvent(
          sql,
          checkoutPaid({ user, priceId: "price_pkg_standard", payment, amount: 1490 }),
        );
        await sql`select credits.consume(${user}, 30, ${ref("use")}, null, ${at(0)})`;
        const disputeRef = ref("dp");
        if (order === "refund first") {
          await applyEvent(sql, refundTotal(payment, 745));
          assert.equal(await balanceOf(sql, user), 70);
          await applyEvent(sql, dispute(payment, disputeRef));
          await applyEvent(sql, dispute(payment, disputeRef)); // redelivered
          assert.deepEqual([
            await removed(sql, user, "refund"),
            await removed(sql, user, "dispute"),
          ], [
            100,
            70,
          ]);
        } else {
          await applyEvent(sql, dispute(payment, disputeRef));
          assert.equal(await balanceOf(sql, user), 0);
          await applyEvent(sql, refundTotal(payment, 745));
          await applyEvent(sql, refundTotal(payment, 1490));
          assert.deepEqual([
            await removed(sql, user, "refund"),
            await removed(sql, user, "dispute"),
          ], [
            0,
            170,
          ]);
        }
        assert.equal(await balanceOf(sql, user), 0);
        await assertBooksAgree(sql, user);
      });
    }
  });
});

Deno.test("an upgrade's payment grants the difference once; a downgrade waits for the next invoice", async (t) => {
  await withDatabase(async ({ sql }) => {
    await loadPlansWithBasic(sql);
    const start = at(-DAY);
    const end = at(29 * DAY);
    // A new user with a monthly subscription over [start, end): its invoices for a price, and
    // its updates to a price at a minute of the period.
    const subscriber = async () => {
      const user = await insertUser(sql);
      const sub = ref("sub");
      const customer = who(user, ref("cus"));
      const invoice = (priceId: string) =>
        periodPaid({ customer, sub, priceId, start, end, payment: ref("in") });
      const change = (priceId: string, minutes: number) =>
        subscriptionChanged({
          customer,
          sub,
          priceId,
          status: "active",
          start,
          end,
          occurredAt: at(minutes * 60_000),
        });
      // The prorated invoice of the move from basic to pro at minute 10.
      const proPaid = upgradePaid({
        customer,
        sub,
        priceId: "price_pro_monthly",
        fromPriceId: "price_basic_monthly",
        changedAt: at(10 * 60_000),
        end,
        payment: ref("in"),
      });
      return { user, customer, sub, invoice, change, proPaid };
    };

    await t.step("basic → pro: 700 once its payment comes, also when events repeat", async () => {
      const { user, invoice, change, proPaid } = await subscriber();
      await applyEvent(sql, invoice("price_basic_monthly"));
      await applyEvent(sql, change("price_basic_monthly", 1));
      assert.equal(await balanceOf(sql, user), 300);
      const upgrade = change("price_pro_monthly", 10);
      await applyEvent(sql, upgrade);
      await applyEvent(sql, upgrade); // redelivered under another event ID
      assert.equal(await balanceOf(sql, user), 300, "no credits before the upgrade is paid");
      await applyEvent(sql, proPaid);
      await applyEvent(sql, proPaid); // redelivered under another event ID
      await applyEvent(sql, change("price_basic_monthly", 5)); // an older update arriving late
      await applyEvent(sql, change("price_pro_monthly", 12)); // a later update about something else
      assert.deepEqual(await kinds(sql, user), [["subscription_period", 300], ["upgrade", 700]]);
      assert.equal(await planOf(sql, user), "pro");
      await assertBooksAgree(sql, user);
    });

    await t.step("an upgrade that arrives before its period's invoice: the same 1000", async () => {
      const { user, invoice, change, proPaid } = await subscriber();
      // In order: created on basic, invoice for basic, upgrade to pro and its payment.
      // Delivered backwards: the payment waits (failed) until the period is known.
      assert.equal(await applyEvent(sql, proPaid), "failed");
      await applyEvent(sql, change("price_pro_monthly", 10));
      await applyEvent(sql, invoice("price_basic_monthly"));
      await applyEvent(sql, change("price_basic_monthly", 1));
      await applyEvent(sql, change("price_pro_monthly", 10));
      assert.deepEqual(await kinds(sql, user), [["upgrade", 700], ["subscription_period", 300]]);
      assert.equal(await planOf(sql, user), "pro");
      await assertBooksAgree(sql, user);
    });

    await t.step("pro → basic: nothing now, the next invoice grants 300", async () => {
      const { user, customer, sub, invoice, change } = await subscriber();
      await applyEvent(sql, invoice("price_pro_monthly"));
      await applyEvent(sql, change("price_basic_monthly", 1));
      assert.equal(await balanceOf(sql, user), 1000);
      await applyEvent(
        sql,
        periodPaid({
          customer,
          sub,
          priceId: "price_basic_monthly",
          start: end,
          end: at(59 * DAY),
          payment: ref("in"),
          amount: 490,
        }),
        { now: at(29 * DAY) },
      );
      assert.deepEqual(await kinds(sql, user), [
        ["subscription_period", 1000],
        ["subscription_period", 300],
      ]);
      assert.equal(await planOf(sql, user, at(30 * DAY)), "basic");
      await assertBooksAgree(sql, user);
    });
  });
});

Deno.test("trialCredits once per subscription; none when the plan has none", async () => {
  await withDatabase(async ({ sql }) => {
    await loadPlansWithBasic(sql);
    const user = await insertUser(sql);
    const sub = ref("sub");
    const trial = (priceId: string, subscription: string, minutes: number) =>
      subscriptionChanged({
        customer: who(user),
        sub: subscription,
        priceId,
        status: "trialing",
        start: at(0),
        end: at(14 * DAY),
        occurredAt: at(minutes * 60_000),
      });
    await applyEvent(sql, trial("price_pro_monthly", sub, 0)); // customer.subscription.created
    await applyEvent(sql, trial("price_pro_monthly", sub, 1)); // an update while trialing
    await applyEvent(sql, trial("prod_pro_monthly", sub, 2), { provider: "creem" }); // another provider's
    // The trial's $0 first invoice grants nothing.
    await applyEvent(
      sql,
      periodPaid({
        customer: who(user),
        sub,
        priceId: "price_pro_monthly",
        start: at(0),
        end: at(14 * DAY),
        payment: ref("in"),
        amount: 0,
      }),
    );
    assert.deepEqual(await kinds(sql, user), [["trial", 100], ["trial", 100]]);
    const other = await insertUser(sql);
    await applyEvent(sql, { ...trial("price_basic_monthly", ref("sub"), 0), customer: who(other) });
    assert.deepEqual(await kinds(sql, other), []);
    assert.equal(await planOf(sql, other), "basic");
    await assertBooksAgree(sql, user);
  });
});

Deno.test("cancel at period end keeps the plan until the end, then the free plan", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const sub = ref("sub");
    const customer = who(user);
    const start = at(-DAY);
    const end = at(29 * DAY);
    await applyEvent(
      sql,
      periodPaid({ customer, sub, priceId: "price_pro_monthly", start, end, payment: ref("in") }),
    );
    await applyEvent(
      sql,
      subscriptionChanged({
        customer,
        sub,
        priceId: "price_pro_monthly",
        status: "active",
        start,
        end,
        cancelAtPeriodEnd: true,
        canceledAt: at(0),
        occurredAt: at(60_000),
      }),
    );
    assert.equal(await planOf(sql, user, at(28 * DAY)), "pro");
    await sql`select credits.distribute_monthly(${at(28 * DAY)}::timestamptz)`;
    assert.deepEqual(await kinds(sql, user), [["subscription_period", 1000]]);
    assert.equal(await planOf(sql, user, at(30 * DAY)), "free");
    await sql`select credits.distribute_monthly(${at(30 * DAY)}::timestamptz)`;
    assert.deepEqual(await kinds(sql, user), [["subscription_period", 1000], ["free_monthly", 50]]);
    const [grant] = await sql`select remaining::int from credits.grants
                               where user_id = ${user} and kind = 'subscription_period'`;
    assert.equal(grant.remaining, 1000, "granted credits stay");
    await assertBooksAgree(sql, user);
  });
});

Deno.test("events out of order end as they would in order", async (t) => {
  await withDatabase(async ({ sql }) => {
    const start = at(-DAY);
    const end = at(29 * DAY);

    await t.step("a paid invoice before the checkout that names its customer", async () => {
      const user = await insertUser(sql);
      const customerRef = ref("cus");
      const sub = ref("sub");
      const invoiceId = ref("evt");
      const invoice = periodPaid({
        customer: who(null, customerRef, "nobody@elsewhere.test"),
        sub,
        priceId: "price_pro_monthly",
        start,
        end,
        payment: ref("in"),
      });
      assert.equal(await applyEvent(sql, invoice, { id: invoiceId }), "failed");
      assert.equal(
        await applyEvent(sql, {
          kind: "checkout_linked",
          customer: who(user, customerRef),
          subscriptionRef: sub,
        }),
        "processed",
      );
      const [row] = await sql`select status, user_id from billing.webhook_events
                               where event_id = ${invoiceId}`;
      assert.deepEqual(row, { status: "processed", user_id: user });
      assert.equal(await applyEvent(sql, invoice, { id: invoiceId }), "duplicate");
      assert.deepEqual(await kinds(sql, user), [["subscription_period", 1000]]);
      assert.equal(await planOf(sql, user), "pro");
    });

    await t.step(
      "an older paid invoice after a newer one pays its period, moves nothing",
      async () => {
        const user = await insertUser(sql);
        const sub = ref("sub");
        const invoice = (from: string, to: string) =>
          periodPaid({
            customer: who(user, ref("cus")),
            sub,
            priceId: "price_pro_monthly",
            start: from,
            end: to,
            payment: ref("in"),
          });
        const later = at(29 * DAY);
        const laterEnd = at(59 * DAY);
        assert.equal(await applyEvent(sql, invoice(later, laterEnd)), "processed");
        assert.equal(await applyEvent(sql, invoice(start, end)), "processed");
        assert.deepEqual(await kinds(sql, user), [
          ["subscription_period", 1000],
          ["subscription_period", 1000],
        ]);
        const [row] = await sql<{ start: Date }[]>`
        select current_period_start as start from billing.subscriptions where provider_ref = ${sub}`;
        assert.equal(row.start.toISOString(), new Date(later).toISOString());
      },
    );

    // The same subscription's events applied in two orders end in the same row.
    const states = async (events: Json[], sub: string) => {
      for (const event of events) await applyEvent(sql, { ...event, subscriptionRef: sub });
      const [row] = await sql`select plan_id, status, current_period_start, current_period_end,
                                     cancel_at_period_end, canceled_at
                                from billing.subscriptions where provider_ref = ${sub}`;
      return row;
    };

    await t.step("an older update after a newer one, a deletion before an update", async () => {
      const user = await insertUser(sql);
      const customer = who(user);
      const base = { customer, sub: "", priceId: "price_pro_monthly", start, end };
      const created = subscriptionChanged({ ...base, status: "active", occurredAt: at(1000) });
      const cancelAtEnd = subscriptionChanged({
        ...base,
        status: "active",
        cancelAtPeriodEnd: true,
        canceledAt: at(2000),
        occurredAt: at(2000),
      });
      const deleted = subscriptionChanged({
        ...base,
        status: "canceled",
        canceledAt: at(3000),
        occurredAt: at(3000),
      });
      const invoice = periodPaid({ ...base, payment: ref("in") });
      const inOrder = await states([invoice, created, cancelAtEnd, deleted], ref("sub"));
      const reversed = await states(
        [
          deleted,
          cancelAtEnd,
          { ...invoice, paymentRef: ref("in"), paymentRefs: [ref("in")] },
          created,
        ],
        ref("sub"),
      );
      assert.deepEqual(reversed, inOrder);
      assert.equal(inOrder.status, "canceled");
      assert.equal(await planOf(sql, user), "free");
    });
  });
});

Deno.test("paid plans get no free monthly credits; a package changes no plan", async () => {
  await withDatabase(async ({ sql }) => {
    const subscriber = await insertUser(sql);
    const lifetime = await insertUser(sql);
    const buyer = await insertUser(sql);
    await applyEvent(
      sql,
      periodPaid({
        customer: who(subscriber),
        sub: ref("sub"),
        priceId: "price_pro_monthly",
        start: at(-DAY),
        end: at(29 * DAY),
        payment: ref("in"),
      }),
    );
    await applyEvent(
      sql,
      checkoutPaid({
        user: lifetime,
        priceId: "price_lifetime",
        payment: ref("pi"),
        amount: 19900,
      }),
    );
    await applyEvent(
      sql,
      checkoutPaid({
        user: buyer,
        priceId: "price_pkg_standard",
        payment: ref("pi"),
        amount: 1490,
      }),
    );
    await sql`select credits.distribute_monthly(${at(0)}::timestamptz)`;
    assert.deepEqual(await kinds(sql, subscriber), [["subscription_period", 1000]]);
    assert.deepEqual(await kinds(sql, lifetime), [["lifetime_monthly", 1000]]);
    assert.deepEqual(await kinds(sql, buyer), [["package", 200], ["free_monthly", 50]]);
    assert.equal(await planOf(sql, buyer), "free");
  });
});
