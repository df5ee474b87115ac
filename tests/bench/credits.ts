// The credit benchmarks of docs/performance.md: consumption under concurrency, monthly
// distribution and expiry in bulk. Each runs in a database of its own.
import type { Sql } from "../../db/client.ts";
import { type Bench, type BenchContext, note, percentile, report, timed } from "./harness.ts";

/** The clock the batch benchmarks run at: the first day of a month, as the daily job would. */
const BATCH_NOW = "2026-12-01T02:00:00Z";

/** Inserts `count` users set-based; the users trigger opens their balance rows. */
async function insertUsers(sql: Sql, count: number): Promise<void> {
  await sql`
    insert into app.users (email)
    select 'bench' || g || '@bench.local' from generate_series(1, ${count}::integer) g`;
}

/** Statistics and a checkpoint, so that the timed statement starts from a settled database. */
async function settle(sql: Sql): Promise<void> {
  await sql`vacuum analyze`;
  await sql`checkpoint`;
}

const CONSUME_CONNECTIONS = 16;
const CONSUME_USERS = 1_000;
const CONSUME_WARMUP_SECONDS = 2;

async function consumeBench(context: BenchContext): Promise<void> {
  const db = await context.freshDatabase({ max: CONSUME_CONNECTIONS });
  try {
    const { sql } = db;
    await insertUsers(sql, CONSUME_USERS);
    // A large never-expiring grant and a large expiring one each: consumption draws from the
    // expiring one first, as it would for a subscriber with a top-up package.
    await sql`
      select credits.grant(id, 1000000000, 'bonus', 'bench-bonus:' || id),
             credits.grant(id, 10000000, 'package', 'bench-package:' || id,
                           now() + interval '90 days')
        from app.users`;
    // A little usage history per user, so that the statistics, and so the plans, are those of a
    // running system rather than of an empty ledger.
    await sql`
      select credits.consume(u.id, 1, 'bench-history:' || u.id || ':' || k)
        from app.users u cross join generate_series(1, 5) k`;
    await settle(sql);
    const users = (await sql<{ id: string }[]>`select id from app.users order by id`)
      .map((row) => row.id);

    const seconds = context.options.consumeSeconds;
    const latencies = new Float64Array(Math.max(1, seconds) * 20_000);
    let measured = 0;
    let warmupCalls = 0;
    let failures = 0;
    let firstFailure: unknown;
    const start = performance.now();
    const measureFrom = start + CONSUME_WARMUP_SECONDS * 1000;
    const stopAt = measureFrom + seconds * 1000;
    let measuredEnd = stopAt;

    const worker = async (workerId: number) => {
      for (let call = 0;; call++) {
        const before = performance.now();
        if (before >= stopAt) return;
        const user = users[Math.floor(Math.random() * users.length)];
        try {
          await sql`select credits.consume(${user}, 1, ${`bench:${workerId}:${call}`})`;
        } catch (error) {
          failures++;
          firstFailure ??= error;
          continue;
        }
        const after = performance.now();
        if (before >= measureFrom) {
          if (measured < latencies.length) latencies[measured] = after - before;
          measured++;
          if (after > measuredEnd) measuredEnd = after;
        } else {
          warmupCalls++;
        }
      }
    };
    await Promise.all(Array.from({ length: CONSUME_CONNECTIONS }, (_, id) => worker(id)));
    if (failures > 0) {
      throw new Error(`${failures} consumptions failed, first: ${String(firstFailure)}`);
    }

    const sorted = latencies.slice(0, Math.min(measured, latencies.length)).sort();
    const elapsed = (measuredEnd - measureFrom) / 1000;
    report("consume_per_s", measured / elapsed, "ops/s");
    report("consume_p99_ms", percentile(sorted, 0.99), "ms");
    note(
      `consume: ${measured} calls in ${elapsed.toFixed(1)} s after ${warmupCalls} warm-up calls, ` +
        `${CONSUME_CONNECTIONS} connections, ${CONSUME_USERS} users; ` +
        `p50 ${percentile(sorted, 0.5).toFixed(2)} ms, p99.9 ${
          percentile(sorted, 0.999).toFixed(2)
        } ms`,
    );
    const [check] = await sql<{ entries: number; consistent: boolean }[]>`
      select (select count(*) from credits.ledger where kind = 'usage')::integer as entries,
             (select bool_and(b.balance = g.remaining)
                from credits.balances b
                join (select user_id, sum(remaining) as remaining
                        from credits.grants group by user_id) g using (user_id)) as consistent`;
    const history = CONSUME_USERS * 5;
    if (check.entries !== history + measured + warmupCalls || !check.consistent) {
      throw new Error(
        `consume left ${check.entries} usage entries for ${history + measured + warmupCalls} ` +
          `calls ` +
          `(balances agree with grants: ${check.consistent})`,
      );
    }
  } finally {
    await db.drop();
  }
}

/**
 * `users` free users, plus 1% on a yearly subscription (two month slots due) and 0.5% with a
 * lifetime purchase (three slots due), so the anti-join against paid plans has work to do.
 */
async function prepareDistribution(sql: Sql, users: number): Promise<void> {
  await insertUsers(sql, users);
  await sql`
    insert into billing.subscriptions
      (user_id, provider, provider_ref, plan_id, price_id, interval, status,
       current_period_start, current_period_end)
    select id, 'stripe', 'sub_bench_' || id, 'pro', 'price_pro_yearly', 'year', 'active',
           ${BATCH_NOW}::timestamptz - interval '40 days',
           ${BATCH_NOW}::timestamptz - interval '40 days' + interval '1 year'
      from app.users order by id limit ${Math.floor(users / 100)}::integer`;
  await sql`
    insert into billing.payments
      (user_id, provider, provider_ref, price_id, kind, amount, currency, paid_at)
    select id, 'stripe', 'pi_bench_' || id, 'price_lifetime', 'lifetime', 19900, 'usd',
           ${BATCH_NOW}::timestamptz - interval '70 days'
      from app.users order by id desc limit ${Math.floor(users / 200)}::integer`;
  await settle(sql);
}

async function distributeBench(context: BenchContext, users: number, name: string) {
  const db = await context.freshDatabase();
  try {
    const { sql } = db;
    const prepared = await timed(() => prepareDistribution(sql, users));
    const first = await timed(async () => {
      const [row] = await sql<{ made: number }[]>`
        select credits.distribute_monthly(${BATCH_NOW}) as made`;
      return row.made;
    });
    report(name, first.seconds, "s");
    const again = await timed(async () => {
      const [row] = await sql<{ made: number }[]>`
        select credits.distribute_monthly(${BATCH_NOW}) as made`;
      return row.made;
    });
    const [sizes] = await sql<{ grants: string; ledger: string }[]>`
      select pg_size_pretty(pg_total_relation_size('credits.grants')) as grants,
             pg_size_pretty(pg_total_relation_size('credits.ledger')) as ledger`;
    note(
      `${name}: ${first.value} grants to ${users} users in ${first.seconds.toFixed(2)} s ` +
        `(set-up ${prepared.seconds.toFixed(1)} s); repeated run made ${again.value} in ` +
        `${again.seconds.toFixed(2)} s; grants ${sizes.grants}, ledger ${sizes.ledger}`,
    );
    if (again.value !== 0) throw new Error(`a repeated distribution made ${again.value} grants`);
  } finally {
    await db.drop();
  }
}

const EXPIRE_GRANTS = 100_000;

async function expireBench(context: BenchContext): Promise<void> {
  const db = await context.freshDatabase();
  try {
    const { sql } = db;
    await insertUsers(sql, EXPIRE_GRANTS);
    // One free monthly grant each, expiring after the free plan's days.
    await sql`select credits.distribute_monthly(${BATCH_NOW})`;
    await settle(sql);
    const later = `2027-02-01T02:00:00Z`;
    const run = await timed(async () => {
      const [row] = await sql<
        { expired: number }[]
      >`select credits.expire_due(${later}) as expired`;
      return row.expired;
    });
    report("expire_100k_grants_s", run.seconds, "s");
    note(`expire_100k_grants_s: ${run.value} grants expired in ${run.seconds.toFixed(2)} s`);
    if (run.value !== EXPIRE_GRANTS) throw new Error(`expired ${run.value} of ${EXPIRE_GRANTS}`);
  } finally {
    await db.drop();
  }
}

/**
 * The daily run over `users` free users (one month's grants each), with grants and consumptions
 * sent throughout on other connections: how long the run takes and how long a request waits.
 */
async function dailyRunBench(context: BenchContext, users: number, suffix: string): Promise<void> {
  const requesters = 8;
  const db = await context.freshDatabase({ max: requesters + 2 });
  try {
    const { sql } = db;
    await insertUsers(sql, users);
    const ids = (await sql<{ id: string }[]>`select id from app.users order by id`).map((r) =>
      r.id
    );
    const spenders = ids.filter((_, i) => i % 1000 === 0);
    await sql`
      select credits.grant(u, 1000000, 'bonus', 'bench-stock:' || u)
        from unnest(${spenders}::uuid[]) u`;
    await settle(sql);
    let running = true;
    const grantMs: number[] = [];
    const consumeMs: number[] = [];
    const requests = Array.from({ length: requesters }, async (_, worker) => {
      for (let call = 0; running; call++) {
        let before = performance.now();
        await sql`
          select credits.grant(${ids[Math.floor(Math.random() * ids.length)]}, 1, 'bonus',
                               ${`bench-during:${worker}:${call}`})`;
        if (running) grantMs.push(performance.now() - before);
        before = performance.now();
        await sql`
          select credits.consume(${spenders[Math.floor(Math.random() * spenders.length)]}, 1,
                                 ${`bench-during:${worker}:${call}`})`;
        if (running) consumeMs.push(performance.now() - before);
      }
    });
    const run = await timed(async () => {
      try {
        const [row] = await sql<{ granted: number }[]>`call credits.run_daily(${BATCH_NOW})`;
        return row.granted;
      } finally {
        running = false;
      }
    });
    await Promise.all(requests);
    grantMs.sort((a, b) => a - b);
    consumeMs.sort((a, b) => a - b);
    report(`daily_run_${suffix}_users_s`, run.seconds, "s");
    report("grant_during_run_p99_ms", percentile(grantMs, 0.99), "ms");
    report("consume_during_run_max_ms", consumeMs.at(-1) ?? 0, "ms");
    note(
      `daily_run_${suffix}_users_s: ${run.value} grants in ${run.seconds.toFixed(2)} s, batches ` +
        `of 2,000; meanwhile ${grantMs.length} grants and ${consumeMs.length} consumptions on ` +
        `${requesters} connections`,
    );
    if (run.value !== users) throw new Error(`the daily run granted ${run.value} of ${users}`);
  } finally {
    await db.drop();
  }
}

export const creditBenches: Bench[] = [
  { name: "consume", run: consumeBench },
  {
    name: "distribute",
    run: (context) => distributeBench(context, 100_000, "distribute_100k_users_s"),
  },
  { name: "expire", run: expireBench },
  {
    name: "distribute_1m",
    run: async (context) => {
      if (context.options.million) {
        await distributeBench(context, 1_000_000, "distribute_1m_users_s");
      }
    },
  },
  {
    name: "daily_run_1m",
    run: async (context) => {
      if (context.options.million) await dailyRunBench(context, 1_000_000, "1m");
    },
  },
];
