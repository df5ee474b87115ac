// distribute_monthly and expire_due on a few thousand users at once: each eligible user gets
// exactly one free grant, users due several grants get them all in one run, and every user's
// ledger balance_after values chain (each entry = the previous one + its amount) through both
// batches, ending at the balance row and the sum of what remains on unexpired grants.
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { withDatabase } from "../helpers/db.ts";

const USERS = 2_000;
const YEARLY = 100; // users 1..100: a yearly subscription, two month slots due, no free grant
const LIFETIME = 50; // users 101..150: a lifetime purchase with two missed slots, no free grant
const NOW = "2026-12-01T02:00:00Z";
const AFTER_EXPIRY = "2027-01-15T00:00:00Z"; // the free plan's and the slots' 30 days are over

/** Ledger entries whose balance_after is not the previous entry's plus their amount. */
async function brokenChains(sql: Sql): Promise<number> {
  const [row] = await sql<{ broken: number }[]>`
    select count(*)::integer as broken
      from (select balance_after, amount,
                   lag(balance_after, 1, 0::bigint) over (partition by user_id order by id) as prev
              from credits.ledger) l
     where balance_after <> prev + amount`;
  return row.broken;
}

/** Users whose balance row, last ledger entry and unexpired grants disagree. */
async function disagreeingUsers(sql: Sql, at: string): Promise<number> {
  const [row] = await sql<{ users: number }[]>`
    select count(*)::integer as users
      from credits.balances b
      left join lateral (select l.balance_after from credits.ledger l
                          where l.user_id = b.user_id order by l.id desc limit 1) last on true
      left join lateral (select coalesce(sum(g.remaining), 0) as remaining from credits.grants g
                          where g.user_id = b.user_id
                            and (g.expires_at is null or g.expires_at > ${at}::timestamptz)) g
        on true
     where b.balance <> coalesce(last.balance_after, 0) or b.balance <> g.remaining`;
  return row.users;
}

async function prepare(sql: Sql): Promise<void> {
  await sql`
    insert into app.users (email)
    select 'scale' || lpad(g::text, 5, '0') || '@test.local' from generate_series(1, ${USERS}::integer) g`;
  // Every third user starts with a never-expiring bonus, so the chains start above zero.
  await sql`
    select credits.grant(u.id, 7, 'bonus', 'scale-bonus:' || u.id)
      from app.users u where right(split_part(u.email, '@', 1), 5)::integer % 3 = 0`;
  await sql`
    insert into billing.subscriptions (user_id, provider, provider_ref, plan_id, price_id, interval,
                                       status, current_period_start, current_period_end)
    select u.id, 'stripe', 'sub_scale_' || u.email, 'pro', 'price_pro_yearly', 'year', 'active',
           '2026-10-15T00:00:00Z', '2027-10-15T00:00:00Z'
      from app.users u where right(split_part(u.email, '@', 1), 5)::integer <= ${YEARLY}::integer`;
  await sql`
    insert into billing.payments (user_id, provider, provider_ref, price_id, kind, amount, currency,
                                  paid_at)
    select u.id, 'stripe', 'pi_scale_' || u.email, 'price_lifetime', 'lifetime', 19900, 'usd',
           '2026-10-20T00:00:00Z'
      from app.users u
     where right(split_part(u.email, '@', 1), 5)::integer between ${YEARLY + 1}::integer
                                                              and ${YEARLY + LIFETIME}::integer`;
}

Deno.test("distribute_monthly and expire_due keep every user's ledger chained at scale", async () => {
  await withDatabase(async ({ sql }) => {
    await prepare(sql);
    const [{ made }] = await sql<{ made: number }[]>`
      select credits.distribute_monthly(${NOW}) as made`;
    const free = USERS - YEARLY - LIFETIME;
    // Yearly slots 0 and 1 (Oct 15, Nov 15); lifetime slots 0 and 1 (Oct 20, Nov 20).
    assert.equal(made, free + 2 * YEARLY + 2 * LIFETIME);

    const perUser = await sql<{ kind: string; grants: number; users: number }[]>`
      select kind, grants::integer, count(*)::integer as users
        from (select user_id, kind, count(*) as grants from credits.grants
               where kind <> 'bonus' group by user_id, kind) s
       group by kind, grants order by kind`;
    assert.deepEqual(perUser.map((row) => ({ ...row })), [
      { kind: "free_monthly", grants: 1, users: free },
      { kind: "lifetime_monthly", grants: 2, users: LIFETIME },
      { kind: "subscription_monthly", grants: 2, users: YEARLY },
    ]);
    const [{ paidWithFree }] = await sql<{ paidWithFree: number }[]>`
      select count(*)::integer as "paidWithFree" from credits.grants g
       where g.kind = 'free_monthly' and g.user_id in (
               select user_id from billing.subscriptions union select user_id from billing.payments)`;
    assert.equal(paidWithFree, 0);

    // A lifetime user's two grants land as two ledger entries of one run, the second on top of
    // the first.
    const lifetimeEntries = await sql<{ amount: number; balance_after: number }[]>`
      select l.amount, l.balance_after from credits.ledger l
       where l.user_id = (select user_id from billing.payments order by user_id limit 1)
       order by l.id`;
    const start = lifetimeEntries.length === 3 ? 7 : 0; // with or without the bonus
    assert.deepEqual(
      lifetimeEntries.slice(-2).map((entry) => entry.balance_after),
      [start + 1000, start + 2000],
    );
    assert.equal(await brokenChains(sql), 0);
    assert.equal(await disagreeingUsers(sql, NOW), 0);

    const [{ again }] = await sql<{ again: number }[]>`
      select credits.distribute_monthly(${NOW}) as again`;
    assert.equal(again, 0);

    // Spend some credits first: every fifth user partly, every seventh one's free grant fully
    // (which expire_due then marks without a ledger entry, since nothing is left to remove).
    await sql`
      select credits.consume(u.id, 10, 'scale-use:' || u.id, null, ${NOW})
        from app.users u where right(split_part(u.email, '@', 1), 5)::integer % 5 = 0`;
    await sql`
      select credits.consume(g.user_id, g.remaining, 'scale-all:' || g.user_id, null, ${NOW})
        from credits.grants g
        join app.users u on u.id = g.user_id
       where g.kind = 'free_monthly' and g.remaining > 0
         and right(split_part(u.email, '@', 1), 5)::integer % 7 = 0
         and right(split_part(u.email, '@', 1), 5)::integer % 3 <> 0`;
    const [due] = await sql<{ withCredits: number; spentOut: number }[]>`
      select count(*) filter (where remaining > 0)::integer as "withCredits",
             count(*) filter (where remaining = 0)::integer as "spentOut"
        from credits.grants where expires_at <= ${AFTER_EXPIRY}::timestamptz`;
    assert.ok(due.spentOut > 0);

    const [{ expired }] = await sql<{ expired: number }[]>`
      select credits.expire_due(${AFTER_EXPIRY}) as expired`;
    assert.equal(expired, due.withCredits);
    const [entries] = await sql<{ expiries: number; open: number }[]>`
      select (select count(*)::integer from credits.ledger where kind = 'expiry') as expiries,
             (select count(*)::integer from credits.grants
               where expires_at <= ${AFTER_EXPIRY}::timestamptz
                 and (expired_at is null or remaining <> 0)) as open`;
    assert.deepEqual({ ...entries }, { expiries: due.withCredits, open: 0 });
    assert.equal(await brokenChains(sql), 0);
    assert.equal(await disagreeingUsers(sql, AFTER_EXPIRY), 0);

    // What is left is exactly the bonuses.
    const [{ total }] = await sql<{ total: number }[]>`
      select sum(balance)::integer as total from credits.balances`;
    assert.equal(total, 7 * Math.floor(USERS / 3));
    const [{ repeated }] = await sql<{ repeated: number }[]>`
      select credits.expire_due(${AFTER_EXPIRY}) as repeated`;
    assert.equal(repeated, 0);
  });
});
