// A connection keeps the plans of its functions' statements once PostgreSQL settles on generic
// ones (after five calls), made with the table sizes and statistics of that moment. A server's
// connections make them on a young database, long before autovacuum has analysed anything. These
// tests let one connection make its plans, fill the tables around them with other users'
// payments, grants and subscriptions, and count the rows and index entries the next webhook
// reads: a handful, however large the tables grew. (Before migration 0005 four of them were read
// in full on every webhook: payment references by provider, every due grant of every user, every
// active subscription, every failed event.)
import assert from "node:assert/strict";
import type postgres from "postgres";
import { connect, type Sql } from "../../db/client.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";
import { DAY, periodPaid, who } from "../helpers/neutral_events.ts";

const FILLER_ROWS = 3_000;
const MAX_ROWS_READ = 60;
const NOW = Date.UTC(2026, 10, 1);
const iso = (ms: number) => new Date(ms).toISOString();
let eventNumber = 0;

/** The paid invoice of the user's monthly subscription for its `period`-th month. */
function invoicePaid(user: string, period: number) {
  const start = NOW + period * 30 * DAY;
  return periodPaid({
    customer: who(user, "cus_stable"),
    sub: "sub_stable",
    priceId: "price_pro_monthly",
    start: iso(start),
    end: iso(start + 30 * DAY),
    payment: `in_stable_${period}`,
  });
}

/** Rows and index entries this backend has read so far, in Tally's schemas. Pending counters:
 * they grow until the backend flushes them, which never happens inside a transaction. */
async function rowsRead(tx: postgres.TransactionSql<Record<string, never>>): Promise<number> {
  const [reads] = await tx<{ rows: number }[]>`
    select sum(pg_stat_get_xact_tuples_returned(c.oid)
               + pg_stat_get_xact_tuples_fetched(c.oid))::int as rows
      from pg_class c
     where c.relnamespace in ('app'::regnamespace, 'billing'::regnamespace,
                              'credits'::regnamespace)`;
  return reads.rows;
}

/** Applies one event on `conn` and returns how many rows and index entries it read. */
async function applyAndCountReads(conn: Sql, user: string, period: number): Promise<number> {
  return await conn.begin(async (tx) => {
    const before = await rowsRead(tx);
    const [applied] = await tx<{ result: string }[]>`
      select billing.apply_event('stripe', ${`evt_stable_${++eventNumber}`}, 'invoice.paid',
                                 ${JSON.stringify(invoicePaid(user, period))}::text::jsonb,
                                 ${iso(NOW + period * 30 * DAY)}::timestamptz) as result`;
    assert.equal(applied.result, "processed");
    return await rowsRead(tx) - before;
  }) as number;
}

/** Other users and their history, written directly: payments with references, due grants,
 * active subscriptions, customers, the webhook inbox (a few of its events failed). Only the
 * sizes matter. */
async function fillTables(sql: Sql, other: string): Promise<void> {
  await sql`
    insert into app.users (email)
    select 'filler-' || n || '@test.local' from generate_series(1, ${FILLER_ROWS}) n`;
  await sql`
    insert into billing.customers (user_id, provider, customer_ref)
    select id, 'stripe', 'cus_' || id from app.users where email like 'filler-%'`;
  await sql`
    insert into billing.webhook_events (provider, event_id, type, event, status, refs,
                                        received_at, error)
    select 'stripe', 'evt_other_' || n, 'invoice.paid', '{}',
           case when n % 100 = 0 then 'failed' else 'processed' end,
           array['payment:in_other_' || n], now(), null
      from generate_series(1, ${FILLER_ROWS}) n`;
  await sql`
    insert into billing.payments (user_id, provider, provider_ref, price_id, kind, amount,
                                  currency, paid_at)
    select ${other}, 'stripe', 'in_other_' || n, 'price_pro_monthly', 'subscription', 990, 'usd',
           now()
      from generate_series(1, ${FILLER_ROWS}) n`;
  await sql`
    insert into billing.payment_refs (provider, ref, user_id, payment_id)
    select 'stripe', p.provider_ref, p.user_id, p.id from billing.payments p
     where p.user_id = ${other}`;
  await sql`
    insert into credits.grants (user_id, kind, amount, remaining, expires_at, source_key)
    select ${other}, 'bonus', 5, 5, ${iso(NOW - DAY)}::timestamptz, 'other_due_' || n
      from generate_series(1, ${FILLER_ROWS}) n`;
  await sql`
    insert into billing.subscriptions (user_id, provider, provider_ref, plan_id, price_id,
                                       interval, status, current_period_start, current_period_end)
    select ${other}, 'stripe', 'sub_other_' || n, 'pro', 'price_pro_monthly', 'month', 'active',
           ${iso(NOW)}::timestamptz, ${iso(NOW + 30 * DAY)}::timestamptz
      from generate_series(1, ${FILLER_ROWS}) n`;
}

Deno.test("a webhook reads a handful of rows with plans made on a young database, however the tables grow", async () => {
  await withDatabase(async (db) => {
    const user = await insertUser(db.sql);
    const other = await insertUser(db.sql);
    const conn = connect(db.url, { max: 1 });
    try {
      let period = 0;
      // Enough calls for every statement on the path to settle on its generic plan.
      for (; period < 8; period++) await applyAndCountReads(conn, user, period);
      const young = await applyAndCountReads(conn, user, period++);

      await fillTables(db.sql, other);
      const grown = await applyAndCountReads(conn, user, period++);
      assert.ok(
        grown <= MAX_ROWS_READ,
        `one webhook read ${grown} rows and index entries after the tables grew (${young} before)`,
      );

      // The same once autovacuum would have analysed the tables: plans made again, with
      // statistics that show many rows of one other user.
      await db.sql`analyze`;
      for (let i = 0; i < 8; i++) await applyAndCountReads(conn, user, period++);
      const analysed = await applyAndCountReads(conn, user, period++);
      assert.ok(
        analysed <= MAX_ROWS_READ,
        `one webhook read ${analysed} rows and index entries after ANALYZE`,
      );
    } finally {
      await conn.end();
    }
  });
});

Deno.test("a webhook reads a handful of rows however many grants its own user already has", async () => {
  await withDatabase(async (db) => {
    const user = await insertUser(db.sql);
    const conn = connect(db.url, { max: 1 });
    try {
      let period = 0;
      for (; period < 8; period++) await applyAndCountReads(conn, user, period);
      // Years of history of the same user: grants that have expired.
      await db.sql`
        insert into credits.grants (user_id, kind, amount, remaining, expires_at, expired_at,
                                    source_key)
        select ${user}, 'bonus', 5, 0, ${iso(NOW - DAY)}::timestamptz,
               ${iso(NOW - DAY)}::timestamptz, 'own_old_' || n
          from generate_series(1, ${FILLER_ROWS}) n`;
      const grown = await applyAndCountReads(conn, user, period++);
      assert.ok(grown <= MAX_ROWS_READ, `one webhook read ${grown} rows and index entries`);
    } finally {
      await conn.end();
    }
  });
});
