// What a user reads: credits.summary (spendable grants in spend order), credits.transactions
// (newest first, paged) and billing.plan_of.
import assert from "node:assert/strict";
import { insertUser, withDatabase } from "../helpers/db.ts";

type Summary = {
  balance: number;
  expiringSoon: { amount: number; before: string };
  grants: {
    id: number;
    kind: string;
    amount: number;
    remaining: number;
    expiresAt: string | null;
  }[];
};

type Page = {
  items: { id: number; kind: string; amount: number; balanceAfter: number; description: string }[];
  nextCursor: string | null;
};

Deno.test("summary lists the unspent, unexpired grants in spend order", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const [{ now }] = await sql<
      { now: Date }[]
    >`select date_trunc('second', now()) + interval '1 hour' as now`;
    const at = (days: number) => new Date(now.getTime() + days * 86_400_000);
    const grant = async (key: string, amount: number, expires: Date | null, kind = "bonus") =>
      (await sql<{ id: number }[]>`
        select credits.grant(${user}, ${amount}, ${kind}, ${key}, ${expires}) as id`)[0].id;
    const never = await grant("never", 10, null);
    const late = await grant("late", 20, at(30), "package");
    const soon = await grant("soon", 5, at(3));
    await grant("gone", 7, at(-0.01)); // expired before `now`, not yet in the ledger
    const spent = await grant("spent", 4, at(1));
    await sql`select credits.consume(${user}, 4, 'use', null, ${now})`; // takes "spent" whole

    const [{ s }] = await sql<{ s: Summary }[]>`select credits.summary(${user}, ${now}) as s`;
    assert.equal(s.balance, 35);
    assert.deepEqual(s.expiringSoon, { amount: 5, before: at(7).toISOString() });
    assert.deepEqual(s.grants.map((g) => [g.id, g.kind, g.remaining, g.expiresAt]), [
      [soon, "bonus", 5, at(3).toISOString()],
      [late, "package", 20, at(30).toISOString()],
      [never, "bonus", 10, null],
    ]);
    assert.ok(!s.grants.some((g) => g.id === spent));
  });
});

Deno.test("transactions are newest first, paged by cursor and filtered by kind", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const other = await insertUser(sql);
    await sql`select credits.grant(${user}, 100, 'bonus', 'g1', null, 'welcome')`;
    for (let i = 1; i <= 4; i++) await sql`select credits.consume(${user}, ${i}, ${`u${i}`})`;
    await sql`select credits.grant(${other}, 9, 'bonus', 'other')`;

    const page = async (limit: number, cursor: string | null, kind: string | null) =>
      (await sql<{ p: Page }[]>`
        select credits.transactions(${user}, ${limit}, ${cursor}::bigint, ${kind}) as p`)[0].p;
    const first = await page(2, null, null);
    assert.deepEqual(first.items.map((i) => [i.kind, i.amount, i.balanceAfter]), [
      ["usage", -4, 90],
      ["usage", -3, 94],
    ]);
    assert.notEqual(first.nextCursor, null);
    const second = await page(2, first.nextCursor, null);
    assert.deepEqual(second.items.map((i) => i.amount), [-2, -1]);
    const last = await page(2, second.nextCursor, null);
    assert.deepEqual(last.items.map((i) => [i.amount, i.description]), [[100, "welcome"]]);
    assert.equal(last.nextCursor, null);

    const grants = await page(10, null, "bonus");
    assert.deepEqual(grants.items.map((i) => i.amount), [100], "another user's rows never show");
    assert.equal(grants.nextCursor, null);
    const usage = await page(10, null, "usage");
    assert.deepEqual(usage.items.map((i) => i.description), Array(4).fill("Usage"));
  });
});

Deno.test("plan_of: the richest paid entitlement, else the free plan", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const at = "2026-06-20T12:00:00Z";
    const plan = async () =>
      (await sql<{ plan_id: string; kind: string; status: string; renews: string | null }[]>`
        select plan_id, kind, status, app.iso(renews_at) as renews
          from billing.plan_of(${user}, ${at}::timestamptz)`)[0];
    assert.deepEqual({ ...(await plan()) }, {
      plan_id: "free",
      kind: "free",
      status: "active",
      renews: "2026-07-01T00:00:00.000Z",
    });
    await sql`
      insert into billing.subscriptions (user_id, provider, provider_ref, plan_id, price_id, interval,
                                         status, current_period_start, current_period_end,
                                         cancel_at_period_end)
      values (${user}, 'stripe', 'sub_1', 'pro', 'price_pro_monthly', 'month', 'past_due',
              '2026-06-05T00:00:00Z', '2026-07-05T00:00:00Z', false)`;
    assert.deepEqual({ ...(await plan()) }, {
      plan_id: "pro",
      kind: "subscription",
      status: "past_due",
      renews: "2026-07-05T00:00:00.000Z",
    });
    await sql`update billing.subscriptions set cancel_at_period_end = true where user_id = ${user}`;
    assert.equal((await plan()).renews, null, "a subscription that ends does not renew");
    await sql`
      insert into billing.payments (user_id, provider, provider_ref, price_id, kind, amount, currency, paid_at)
      values (${user}, 'stripe', 'pi_1', 'price_lifetime', 'lifetime', 19900, 'usd', '2026-06-10T00:00:00Z')`;
    assert.deepEqual({ ...(await plan()) }, {
      plan_id: "lifetime",
      kind: "lifetime",
      status: "active",
      renews: null,
    });
  });
});
