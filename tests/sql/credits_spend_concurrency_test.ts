// Concurrency claims of the credit functions, tested with real parallel PostgreSQL connections.
import assert from "node:assert/strict";
import { connect, type Sql, sqlState } from "../../db/client.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";
import { agreement } from "../helpers/books.ts";

/** Opens n single-connection clients, so that each call below really runs on its own backend. */
function clients(url: string, n: number): Sql[] {
  return Array.from({ length: n }, () => connect(url, { max: 1 }));
}

async function closeAll(list: Sql[]): Promise<void> {
  await Promise.all(list.map((c) => c.end({ timeout: 5 })));
}

Deno.test("200 concurrent consume(1) over 16 connections on a balance of 100: exactly 100 succeed", async () => {
  await withDatabase(async ({ sql, url }) => {
    const user = await insertUser(sql);
    // Several grants with different expiries, so that concurrent callers contend on each.
    await sql`select credits.grant(${user}, 40, 'bonus', 'never')`;
    await sql`select credits.grant(${user}, 30, 'bonus', 'week', now() + interval '7 days')`;
    await sql`select credits.grant(${user}, 30, 'package', 'month', now() + interval '30 days')`;

    const pool = clients(url, 16);
    try {
      // All 16 backends open before the race; the calls below go round-robin over them.
      const backends = await Promise.all(
        pool.map((c) => c<{ pid: number }[]>`select pg_backend_pid() as pid`),
      );
      assert.equal(new Set(backends.map(([r]) => r.pid)).size, 16, "16 distinct backends");
      const results = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) =>
          pool[i % 16]<{ balance: number; pid: number }[]>`
            select credits.consume(${user}, 1, ${`call-${i}`}) as balance,
                   pg_backend_pid() as pid`),
      );
      const succeeded = results.flatMap((r) => r.status === "fulfilled" ? [r.value[0]] : []);
      const refused = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
      assert.equal(succeeded.length, 100);
      assert.equal(refused.length, 100);
      for (const reason of refused) assert.equal(sqlState(reason), "CR001", String(reason));
      assert.ok(
        new Set(succeeded.map((r) => r.pid)).size > 1,
        "successes came from several backends",
      );
      // Each success saw its own balance-after: 99, 98, ..., 0, each exactly once.
      assert.deepEqual(
        succeeded.map((r) => r.balance).sort((a, b) => a - b),
        Array.from({ length: 100 }, (_, i) => i),
      );
    } finally {
      await closeAll(pool);
    }

    assert.deepEqual(await agreement(sql, user), {
      stored: 0,
      ledgerSum: 0,
      unexpiredRemaining: 0,
      spendable: 0,
    });
    const [usage] = await sql<{ rows: number; drawn: number }[]>`
      select count(*)::int as rows,
             (select coalesce(sum((d ->> 'amount')::bigint), 0)::bigint
                from credits.ledger l2, jsonb_array_elements(l2.draws) d
               where l2.user_id = ${user} and l2.kind = 'usage') as drawn
        from credits.ledger where user_id = ${user} and kind = 'usage'`;
    assert.deepEqual({ ...usage }, { rows: 100, drawn: 100 });
    // Soonest expiry first held under contention too: the usage rows drew week, month, never.
    const [order] = await sql<{ keys: string[] }[]>`
      select array_agg(g.source_key order by l.id) as keys
        from credits.ledger l, jsonb_array_elements(l.draws) d
        join credits.grants g on g.id = (d ->> 'grant')::bigint
       where l.user_id = ${user} and l.kind = 'usage'`;
    const runs = order.keys.filter((key, i) => i === 0 || order.keys[i - 1] !== key);
    assert.deepEqual(runs, ["week", "month", "never"]);
  }, { max: 4 });
});

Deno.test("concurrent consumptions with one idempotency key apply once", async () => {
  await withDatabase(async ({ sql, url }) => {
    const user = await insertUser(sql);
    await sql`select credits.grant(${user}, 50, 'bonus', 'g')`;
    const pool = clients(url, 16);
    try {
      const results = await Promise.all(
        pool.map((c) =>
          c<{ balance: number }[]>`select credits.consume(${user}, 7, 'same-job') as balance`
        ),
      );
      assert.deepEqual(results.map(([r]) => r.balance), Array(16).fill(43));
    } finally {
      await closeAll(pool);
    }
    const [{ n }] = await sql<{ n: number }[]>`
      select count(*)::int as n from credits.ledger where user_id = ${user} and kind = 'usage'`;
    assert.equal(n, 1);
    assert.deepEqual(await agreement(sql, user), {
      stored: 43,
      ledgerSum: 43,
      unexpiredRemaining: 43,
      spendable: 43,
    });
  });
});

Deno.test("concurrent grants with one source key grant once and all return its id", async () => {
  await withDatabase(async ({ sql, url }) => {
    const user = await insertUser(sql);
    const pool = clients(url, 16);
    try {
      const ids = await Promise.all(
        pool.map((c) =>
          c<{ id: number }[]>`select credits.grant(${user}, 25, 'package', 'pay_1') as id`
        ),
      );
      assert.equal(new Set(ids.map(([r]) => r.id)).size, 1);
    } finally {
      await closeAll(pool);
    }
    assert.deepEqual(await agreement(sql, user), {
      stored: 25,
      ledgerSum: 25,
      unexpiredRemaining: 25,
      spendable: 25,
    });
  });
});

Deno.test("daily sign-in called 10 times at once grants once", async () => {
  await withDatabase(async ({ sql, url }) => {
    const user = await insertUser(sql);
    const pool = clients(url, 10);
    try {
      const results = await Promise.all(
        pool.map((c) =>
          c<{ granted: number; balance: number }[]>`
          select granted, balance from credits.daily_signin(${user})`
        ),
      );
      const granted = results.map(([r]) => r.granted);
      assert.deepEqual(granted.sort((a, b) => b - a), [5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      for (const [r] of results) assert.equal(r.balance, 5);
    } finally {
      await closeAll(pool);
    }
    const [{ n }] = await sql<{ n: number }[]>`
      select count(*)::int as n from credits.grants where user_id = ${user} and kind = 'daily_signin'`;
    assert.equal(n, 1);
  });
});

Deno.test("run_daily and distribute_monthly on 4 connections at once never grant twice", async () => {
  await withDatabase(async ({ sql, url }) => {
    await sql`insert into app.users (email) select 'user' || i || '@test.local' from generate_series(1, 40) i`;
    const [yearly] = await sql<
      { id: string }[]
    >`select id from app.users where email = 'user1@test.local'`;
    await sql`
      insert into billing.subscriptions (user_id, provider, provider_ref, plan_id, price_id, interval,
                                         status, current_period_start, current_period_end)
      values (${yearly.id}, 'stripe', 'sub_y', 'pro', 'price_pro_yearly', 'year', 'active',
              '2026-01-15T00:00:00Z', '2027-01-15T00:00:00Z')`;
    const at = "2026-06-20T12:00:00Z";
    // 39 free users + 6 slots (Jan 15 .. Jun 15) of the yearly subscriber.
    const expected = 39 + 6;

    const runners = clients(url, 8);
    let grantedByDistributions = 0;
    try {
      await Promise.all(runners.map((c) => c`select 1`));
      const [, distributions] = await Promise.all([
        Promise.all(runners.slice(0, 4).map((c) => c`call credits.run_daily(${at}::timestamptz)`)),
        Promise.all(
          runners.slice(4).map((c) =>
            c<{ n: number }[]>`select credits.distribute_monthly(${at}::timestamptz) as n`
          ),
        ),
      ]);
      grantedByDistributions = distributions.reduce((sum, [r]) => sum + r.n, 0);
    } finally {
      await closeAll(runners);
    }
    const [counts] = await sql<{ grants: number; ledger: number; balances: number }[]>`
      select (select count(*) from credits.grants)::int as grants,
             (select count(*) from credits.ledger)::int as ledger,
             (select sum(balance) from credits.balances)::bigint as balances`;
    assert.deepEqual({ ...counts }, {
      grants: expected,
      ledger: expected,
      balances: 39 * 50 + 6 * 1000,
    });
    const runs = await sql<{ granted: number; expired: number; finished: boolean }[]>`
      select granted, expired, finished_at is not null as finished from credits.daily_runs order by id`;
    assert.equal(runs.length, 4);
    const grantedByRuns = runs.reduce((sum, r) => sum + r.granted, 0);
    assert.equal(
      grantedByRuns + grantedByDistributions,
      expected,
      "each grant counted by one caller",
    );
    for (const run of runs) assert.ok(run.finished && run.expired === 0);
  });
});

Deno.test("consumption keeps the books right while a daily run expires and grants", async () => {
  await withDatabase(async ({ sql, url }) => {
    await sql`insert into app.users (email) select 'user' || i || '@test.local' from generate_series(1, 8) i`;
    const users = (await sql<{ id: string }[]>`select id from app.users order by id`).map((r) =>
      r.id
    );
    for (const user of users) {
      await sql`select credits.grant(${user}, 30, 'bonus', ${`short:${user}`}, now() + interval '1 hour')`;
      await sql`select credits.grant(${user}, 30, 'bonus', ${`long:${user}`})`;
    }
    const at = new Date(Date.now() + 2 * 3_600_000); // the short grants have expired by then
    const pool = clients(url, 9);
    try {
      const consumers = users.flatMap((user, u) =>
        Array.from(
          { length: 10 },
          (_, i) =>
            pool[(u + i) % 8]`select credits.consume(${user}, 4, ${`job-${i}`}, null, ${at})`
              .then(() => "ok", (error) => sqlState(error) ?? String(error)),
        )
      );
      const [outcomes] = await Promise.all([
        Promise.all(consumers),
        pool[8]`call credits.run_daily(${at})`,
      ]);
      const counts = outcomes.reduce<Record<string, number>>((acc, o) => {
        acc[o] = (acc[o] ?? 0) + 1;
        return acc;
      }, {});
      assert.deepEqual(Object.keys(counts).filter((k) => k !== "ok" && k !== "CR001"), []);
    } finally {
      await closeAll(pool);
    }
    await sql`select credits.expire_due(${at})`;
    for (const user of users) {
      const books = await agreement(sql, user);
      assert.equal(books.stored, books.ledgerSum);
      assert.equal(books.stored, books.unexpiredRemaining);
      assert.equal(books.stored, books.spendable);
      const [{ spent }] = await sql<{ spent: number }[]>`
        select coalesce(-sum(amount), 0)::bigint as spent from credits.ledger
         where user_id = ${user} and kind = 'usage'`;
      assert.equal(books.stored + spent, 30 + 50, "long grant + free monthly, less what was spent");
    }
  });
});
