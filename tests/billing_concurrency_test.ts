// Two different payment events for one user at the same instant, each on its own connection:
// no deadlock, both applied, and the ledger, the balance row and the grants agree afterwards.
import assert from "node:assert/strict";
import { connect, type Sql } from "../db/client.ts";
import { insertUser, withDatabase } from "./helpers/db.ts";

type Json = Record<string, unknown>;
const DAY = 86_400_000;
const T0 = Math.floor(Date.now() / 1000) * 1000;
const at = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();
let sequence = 0;
const ref = (prefix: string) => `${prefix}_${++sequence}_${crypto.randomUUID().slice(0, 8)}`;
const ROUNDS = 8;

async function apply(sql: Sql, event: Json, now = at(0)): Promise<string> {
  const [row] = await sql<{ result: string }[]>`
    select billing.apply_event('stripe', ${ref("evt")}, ${String(event.kind)},
                               ${JSON.stringify(event)}::text::jsonb, ${now}::timestamptz)
      as result`;
  return row.result;
}

async function assertConsistent(sql: Sql, user: string): Promise<number> {
  const [row] = await sql<{ ledger: number; stored: number; remaining: number; broken: number }[]>`
    select (select coalesce(sum(amount), 0)::int from credits.ledger where user_id = ${user})
             as ledger,
           (select balance::int from credits.balances where user_id = ${user}) as stored,
           (select coalesce(sum(remaining), 0)::int from credits.grants
             where user_id = ${user} and (expires_at is null or expires_at > now())) as remaining,
           (select count(*)::int from (
              select balance_after, sum(amount) over (order by id) as running
                from credits.ledger where user_id = ${user}) x
             where balance_after <> running) as broken`;
  assert.deepEqual(row, {
    ledger: row.stored,
    stored: row.remaining,
    remaining: row.remaining,
    broken: 0,
  });
  return row.stored;
}

const customer = (user: string, customerRef: string) => ({
  userId: user,
  customerRef,
  email: null,
});

function packagePaid(user: string, customerRef: string, payment: string): Json {
  return {
    kind: "checkout_paid",
    customer: customer(user, customerRef),
    priceId: "price_pkg_standard",
    checkoutRef: `cs_${payment}`,
    paymentRef: payment,
    paymentRefs: [payment, `cs_${payment}`],
    amount: 1490,
    currency: "usd",
    paidAt: at(0),
  };
}

Deno.test("different events for one user at once: no deadlock, both applied", async (t) => {
  await withDatabase(async ({ sql, url }) => {
    // Two connections of their own, so the events really run side by side.
    const left = connect(url, { max: 1 });
    const right = connect(url, { max: 1 });
    try {
      await t.step("a renewal invoice and a subscription update", async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const user = await insertUser(sql);
          const cus = ref("cus");
          const sub = ref("sub");
          const first = { start: at(-DAY), end: at(29 * DAY) };
          const period = (p: { start: string; end: string }) => ({
            kind: "period_paid",
            customer: customer(user, cus),
            subscriptionRef: sub,
            priceId: "price_pro_monthly",
            periodStart: p.start,
            periodEnd: p.end,
            paymentRef: ref("in"),
            paymentRefs: [ref("in")],
            amount: 990,
            currency: "usd",
            paidAt: p.start,
            grantsPeriod: true,
          });
          await apply(sql, period(first));
          const next = { start: at(29 * DAY), end: at(59 * DAY) };
          const results = await Promise.all([
            apply(left, period(next)),
            apply(right, {
              kind: "subscription_changed",
              customer: customer(user, cus),
              subscriptionRef: sub,
              priceId: "price_pro_monthly",
              status: "active",
              periodStart: next.start,
              periodEnd: next.end,
              cancelAtPeriodEnd: false,
              canceledAt: null,
              occurredAt: at(29 * DAY + 1000),
            }),
          ]);
          assert.deepEqual(results, ["processed", "processed"]);
          assert.equal(await assertConsistent(sql, user), 2000);
          const [row] = await sql`select current_period_start from billing.subscriptions
                                   where provider_ref = ${sub}`;
          assert.equal(row.current_period_start.toISOString(), next.start);
        }
      });

      await t.step("a refund of one package while buying another", async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const user = await insertUser(sql);
          const cus = ref("cus");
          const bought = ref("pi");
          await apply(sql, packagePaid(user, cus, bought));
          await sql`select credits.consume(${user}, 20, ${ref("use")})`;
          const results = await Promise.all([
            apply(left, {
              kind: "refund",
              paymentRefs: [bought],
              refundRef: ref("ch"),
              refundedTotal: 1490,
              amount: null,
              occurredAt: at(0),
            }),
            apply(right, packagePaid(user, cus, ref("pi"))),
          ]);
          assert.deepEqual(results, ["processed", "processed"]);
          // 200 bought, 20 spent (from the first package, which expires with the second),
          // the first's other 180 refunded, the second's 200 stay.
          assert.equal(await assertConsistent(sql, user), 200);
        }
      });

      await t.step("a dispute while the daily job runs", async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const user = await insertUser(sql);
          const bought = ref("pi");
          await apply(sql, {
            ...packagePaid(user, ref("cus"), bought),
            priceId: "price_lifetime",
            amount: 19900,
          });
          const [disputed, distributed] = await Promise.all([
            apply(left, {
              kind: "dispute",
              paymentRefs: [bought],
              disputeRef: ref("dp"),
              occurredAt: at(0),
            }),
            right`select credits.distribute_monthly(${at(32 * DAY)}::timestamptz) as n`,
          ]);
          assert.equal(disputed, "processed");
          assert.ok(Number(distributed[0].n) >= 0);
          // Whichever came first, no lifetime credit survives the dispute unless the slot was
          // made after it (then the purchase had already ended and no slot is made at all).
          const [row] = await sql<{ n: number }[]>`
            select coalesce(sum(remaining), 0)::int as n from credits.grants
             where user_id = ${user} and kind = 'lifetime_monthly'`;
          assert.equal(row.n, 0);
          await assertConsistent(sql, user);
        }
      });
    } finally {
      await left.end();
      await right.end();
    }
  });
});
