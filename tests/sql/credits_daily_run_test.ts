// credits.run_daily in batches (sql/credits_daily_run.sql), on real parallel connections: requests
// complete while a run is in progress, a run killed part-way is finished by the next one, a second
// run at once does nothing and says so, and a failing batch is isolated and skipped.
import assert from "node:assert/strict";
import postgres from "postgres";
import { connect, type Sql } from "../../db/client.ts";
import { withDatabase } from "../helpers/db.ts";
import { assertBooksAgree, assertHoldsAgree } from "../helpers/books.ts";

const AT = "2026-12-01T02:00:00Z";

type Run = {
  id: number;
  status: string;
  users: number | null;
  users_done: number;
  batches_done: number;
  failed_batches: number;
  failed_users: number;
  expired: number;
  granted: number;
  resumed_from: number | null;
  note: string | null;
  errors: { range: [string, string]; users: number; error: string }[];
};

/** n users (balance rows come with them), returned in user_id order: the run's order. */
async function seedUsers(sql: Sql, n: number): Promise<string[]> {
  await sql`
    insert into app.users (email)
    select 'run' || g || '@test.local' from generate_series(1, ${n}::integer) g`;
  const rows = await sql<{ user_id: string }[]>`
    select user_id from credits.balances order by user_id`;
  return rows.map((r) => r.user_id);
}

async function runs(sql: Sql): Promise<Run[]> {
  return [
    ...await sql<Run[]>`
    select id, status, users, users_done, batches_done, failed_batches, failed_users, expired,
           granted, resumed_from, note, errors
      from credits.daily_runs order by id`,
  ];
}

/** Users whose free_monthly grants are not exactly one, and the free_monthly ledger entries. */
async function freeGrantCounts(sql: Sql): Promise<{ notOne: number; entries: number }> {
  const [row] = await sql<{ not_one: number; entries: number }[]>`
    select (select count(*) from credits.balances b
             where (select count(*) from credits.grants g
                     where g.user_id = b.user_id and g.kind = 'free_monthly') <> 1)::int as not_one,
           (select count(*) from credits.ledger where kind = 'free_monthly')::int as entries`;
  return { notOne: row.not_one, entries: row.entries };
}

/** Users whose balance row is not their last ledger entry's balance_after. */
async function disagreeingUsers(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from credits.balances b
     where b.balance <> coalesce((select l.balance_after from credits.ledger l
                                   where l.user_id = b.user_id order by l.id desc limit 1), 0)`;
  return row.n;
}

/**
 * Polls until check is true. The limit only turns a hang into a failure; what the tests assert
 * never depends on how long anything took.
 */
async function until(check: () => Promise<boolean>): Promise<void> {
  const giveUp = Date.now() + 120_000;
  while (!await check()) {
    if (Date.now() > giveUp) throw new Error("gave up waiting after 120 s");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Whether backend pid is waiting for a lock (a row lock another transaction holds). */
async function waitingOnLock(sql: Sql, pid: number): Promise<boolean> {
  const [row] = await sql<{ waiting: boolean }[]>`
    select coalesce((select wait_event_type = 'Lock' from pg_stat_activity where pid = ${pid}),
                    false) as waiting`;
  return row.waiting;
}

/**
 * Holds user's balance row locked in an open transaction until release() is called, so that a
 * run reaching that user's batch waits there: the test then knows exactly where the run is.
 */
async function holdRow(url: string, user: string) {
  const holder = connect(url, { max: 1 });
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  let locked = () => {};
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const done = holder.begin(async (tx) => {
    await tx`select 1 from credits.balances where user_id = ${user} for update`;
    locked();
    await released;
  });
  await isLocked;
  return {
    release: async () => {
      release();
      await done;
      await holder.end();
    },
  };
}

Deno.test("grants and consumptions complete while a run of 20 batches is in progress", async () => {
  await withDatabase(async ({ sql, url }) => {
    const users = await seedUsers(sql, 20_000);
    const spenders = users.filter((_, i) => i % 400 === 7); // 50 users across all batches
    await sql`
      select credits.grant(u, 1000, 'bonus', 'stock:' || u) from unnest(${spenders}::uuid[]) u`;
    const runner = connect(url, { max: 1 });
    const workers = Array.from({ length: 4 }, () => connect(url, { max: 1 }));
    try {
      let finished = false;
      const run = runner<{ granted: number; run_id: number }[]>`
        call credits.run_daily(${AT}::timestamptz, 'scheduler', 1000)`.finally(() => {
        finished = true;
      });
      await until(async () =>
        (await sql`select 1 from credits.daily_runs where status = 'running'`).length > 0
      );
      const duringRun = { grants: 0, consumptions: 0 };
      /** Whether the run's record, read after a request completed, still shows it mid-way. */
      const midway = async () => {
        const [row] = await sql<{ midway: boolean }[]>`
          select coalesce(bool_or(status = 'running' and users_done < users), false) as midway
            from credits.daily_runs`;
        return row.midway;
      };
      await Promise.all(workers.map(async (worker, w) => {
        for (let i = 0; !finished; i++) {
          const user = spenders[(w * 13 + i * 7) % spenders.length];
          const other = users[(w * 5003 + i * 7919) % users.length];
          await worker`select credits.grant(${other}, 1, 'bonus', ${`during:${w}:${i}`})`;
          if (await midway()) duringRun.grants++;
          await worker`select credits.consume(${user}, 1, ${`job:${w}:${i}`}, null, ${AT})`;
          if (await midway()) duringRun.consumptions++;
        }
      }));
      const [answer] = await run;
      assert.ok(duringRun.grants >= 10, `grants completed during the run: ${duringRun.grants}`);
      assert.ok(
        duringRun.consumptions >= 10,
        `consumptions completed during the run: ${duringRun.consumptions}`,
      );
      assert.equal(answer.granted, 20_000);
      const [record] = await runs(sql);
      assert.deepEqual(
        [record.status, record.users, record.users_done, record.batches_done, record.granted],
        ["done", 20_000, 20_000, 20, 20_000],
      );
      assert.deepEqual(await freeGrantCounts(sql), { notOne: 0, entries: 20_000 });
      assert.equal(await disagreeingUsers(sql), 0);
    } finally {
      await Promise.all([runner, ...workers].map((c) => c.end({ timeout: 5 })));
    }
  }, { max: 4 });
});

Deno.test("while a batch waits on one user's row, grants to users of other batches go through", async () => {
  await withDatabase(async ({ sql, url }) => {
    const users = await seedUsers(sql, 3_000);
    const blocked = users[1_500]; // in the 4th batch of 500
    const holder = await holdRow(url, blocked);
    const runner = connect(url, { max: 1 });
    try {
      const [{ pid }] = await runner<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const run = runner`call credits.run_daily(${AT}::timestamptz, 'scheduler', 500)`.execute();
      await until(() => waitingOnLock(sql, pid));
      // The run is inside batch 4 (users 1,500..1,999), holding its users' rows up to `blocked`.
      const [progress] = await runs(sql);
      assert.deepEqual([progress.status, progress.batches_done], ["running", 3]);
      for (const index of [0, 1_000, 1_499, 2_000, 2_999]) {
        const [granted] = await sql<{ id: number }[]>`
          select credits.grant(${users[index]}, 5, 'bonus', ${`while-blocked:${index}`}) as id`;
        assert.ok(granted.id > 0, `user ${index} (outside the waiting batch) granted`);
      }
      assert.ok(await waitingOnLock(sql, pid), "the run was still waiting all along");
      await holder.release();
      await run;
    } finally {
      await runner.end({ timeout: 5 });
    }
    const [record] = await runs(sql);
    assert.deepEqual([record.status, record.granted, record.batches_done], ["done", 3_000, 6]);
    assert.deepEqual(await freeGrantCounts(sql), { notOne: 0, entries: 3_000 });
    assert.equal(await disagreeingUsers(sql), 0);
  });
});

Deno.test("a run killed part-way is continued by the next: every user granted once", async () => {
  await withDatabase(async ({ sql, url }) => {
    const users = await seedUsers(sql, 5_000);
    const holder = await holdRow(url, users[2_100]); // in the 5th batch of 500
    const runner = connect(url, { max: 1 });
    try {
      const [{ pid }] = await runner<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const run = runner`call credits.run_daily(${AT}::timestamptz, 'scheduler', 500)`.execute();
      await until(() => waitingOnLock(sql, pid));
      await sql`select pg_terminate_backend(${pid})`;
      await assert.rejects(run);
      await until(async () =>
        (await sql`select 1 from pg_stat_activity where pid = ${pid}`).length === 0
      );
    } finally {
      await holder.release();
      await runner.end({ timeout: 5 });
    }
    const [killed] = await runs(sql);
    assert.deepEqual(
      [killed.status, killed.users, killed.users_done, killed.batches_done, killed.granted],
      ["running", 5_000, 2_000, 4, 2_000],
      "four batches committed, the fifth rolled back",
    );
    const [{ shown }] = await sql<{ shown: string }[]>`
      select app.admin_runs(1) -> 0 ->> 'status' as shown`;
    assert.equal(shown, "interrupted", "the admin page tells a dead run from a running one");

    const [answer] = await sql<{ granted: number; run_id: number }[]>`
      call credits.run_daily(${AT}::timestamptz, 'scheduler', 500)`;
    assert.equal(answer.granted, 3_000);
    const [first, second] = await runs(sql);
    assert.equal(first.status, "failed");
    assert.match(first.note ?? "", /interrupted after 2000 of 5000 users/);
    assert.deepEqual(
      [second.id, second.status, second.resumed_from, second.users, second.users_done],
      [answer.run_id, "done", first.id, 3_000, 3_000],
    );
    assert.deepEqual(await freeGrantCounts(sql), { notOne: 0, entries: 5_000 });
    assert.equal(await disagreeingUsers(sql), 0);

    // A third run the same day starts over from the first user and finds nothing left to do.
    const [again] = await sql<{ granted: number }[]>`
      call credits.run_daily(${AT}::timestamptz, 'scheduler', 500)`;
    assert.equal(again.granted, 0);
    const third = (await runs(sql))[2];
    assert.deepEqual([third.status, third.resumed_from, third.users_done], ["done", null, 5_000]);
  });
});

Deno.test("a second run while one is going returns at once and says which run it found", async () => {
  await withDatabase(async ({ sql, url }) => {
    const users = await seedUsers(sql, 2_000);
    const holder = await holdRow(url, users[1_200]);
    const first = connect(url, { max: 1 });
    const second = connect(url, { max: 1 });
    try {
      const [{ pid }] = await first<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const running = first<{ granted: number; run_id: number }[]>`
        call credits.run_daily(${AT}::timestamptz, 'scheduler', 500)`.execute();
      await until(() => waitingOnLock(sql, pid));
      const [skipped] = await second<{ granted: number; expired: number; run_id: number }[]>`
        call credits.run_daily(${AT}::timestamptz, 'http', 500)`;
      assert.deepEqual([skipped.granted, skipped.expired], [0, 0]);
      const [busy, idle] = await runs(sql);
      assert.equal(busy.status, "running", "the first run is still going when the second returns");
      assert.deepEqual([idle.id, idle.status, idle.note], [
        skipped.run_id,
        "skipped",
        `run ${busy.id} was running`,
      ]);
      await holder.release();
      const [done] = await running;
      assert.equal(done.granted, 2_000);
    } finally {
      await Promise.all([first.end({ timeout: 5 }), second.end({ timeout: 5 })]);
    }
    assert.deepEqual((await runs(sql)).map((r) => r.status), ["done", "skipped"]);
    assert.deepEqual(await freeGrantCounts(sql), { notOne: 0, entries: 2_000 });
  });
});

/** Makes every grant insert for the given users fail, as a broken row would. */
async function breakUsers(sql: Sql, bad: string[]): Promise<void> {
  await sql`create table public.bad_users (user_id uuid primary key)`;
  await sql`insert into public.bad_users select unnest(${bad}::uuid[])`;
  await sql.unsafe(`
    create function public.refuse_bad_user() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from public.bad_users b where b.user_id = new.user_id) then
        raise exception 'user % is broken', new.user_id;
      end if;
      return new;
    end $$;
    create trigger refuse_bad_user before insert on credits.grants
      for each row execute function public.refuse_bad_user()`);
}

/** Runs the daily job on a connection that keeps the database's warnings. */
async function runCollectingWarnings(url: string, batchSize: number) {
  const warnings: string[] = [];
  const client = postgres(url, {
    max: 1,
    onnotice: (notice) => {
      if (notice.severity === "WARNING") warnings.push(String(notice.message));
    },
  });
  try {
    const [answer] = await client<{ granted: number }[]>`
      call credits.run_daily(${AT}::timestamptz, 'scheduler', ${batchSize})`;
    return { granted: answer.granted, warnings };
  } finally {
    await client.end({ timeout: 5 });
  }
}

for (
  const [badCount, status] of [[20, "done"], [21, "degraded"]] as const
) {
  Deno.test(`${badCount} broken users in 2,000 (pieces of 5): the run is ${status}`, async () => {
    await withDatabase(async ({ sql, url }) => {
      const users = await seedUsers(sql, 2_000);
      // One broken user in each batch of 100; with 21, batch 1 has a second one in another piece
      // of 5. Each skipped piece takes its 5 users: 100 users is 5 %, 105 is more.
      const bad = users.filter((_, i) => i % 100 === 0);
      if (badCount === 21) bad.push(users[50]);
      await breakUsers(sql, bad);
      const { granted, warnings } = await runCollectingWarnings(url, 100);
      const failedUsers = 5 * badCount;
      assert.equal(granted, 2_000 - failedUsers);
      const [record] = await runs(sql);
      assert.deepEqual(
        [record.status, record.failed_batches, record.failed_users, record.users_done],
        [status, badCount, failedUsers, 2_000],
      );
      assert.equal(record.errors.length, badCount);
      for (const error of record.errors) {
        assert.equal(error.users, 5);
        assert.match(error.error, /is broken/);
        assert.ok(error.range[0] <= error.range[1]);
      }
      // Everyone outside the skipped pieces got their grant; the broken users nothing.
      const [counts] = await sql<{ granted_users: number; bad_granted: number }[]>`
        select count(distinct user_id)::int as granted_users,
               count(*) filter (where user_id = any (${bad}::uuid[]))::int as bad_granted
          from credits.grants where kind = 'free_monthly'`;
      assert.deepEqual({ ...counts }, { granted_users: 2_000 - failedUsers, bad_granted: 0 });
      assert.equal(await disagreeingUsers(sql), 0);
      assert.equal(
        warnings.filter((w) => /skipped \(5 users\): user .* is broken/.test(w)).length,
        badCount,
      );
      const degradedLines = warnings.filter((w) => w.startsWith("daily run degraded"));
      const events = await sql<{ kind: string; failed: number; run: number }[]>`
        select kind, (payload ->> 'failedUsers')::int as failed, (payload ->> 'runId')::int as run
          from credits.ops_events`;
      if (status === "degraded") {
        assert.equal(degradedLines.length, 1);
        assert.deepEqual(events.map((e) => ({ ...e })), [
          { kind: "ops.daily_run_degraded", failed: failedUsers, run: record.id },
        ]);
      } else {
        assert.deepEqual([degradedLines.length, events.length], [0, 0]);
      }

      // Once the rows are mended, the next run grants the skipped users, and only them.
      await sql`drop trigger refuse_bad_user on credits.grants`;
      const [next] = await sql<{ granted: number }[]>`
        call credits.run_daily(${AT}::timestamptz, 'scheduler', 100)`;
      assert.equal(next.granted, failedUsers);
      assert.deepEqual(await freeGrantCounts(sql), { notOne: 0, entries: 2_000 });
    });
  });
}

Deno.test("batches record due releases before due expiries, as expire_due does", async () => {
  await withDatabase(async ({ sql }) => {
    const users = await seedUsers(sql, 200);
    const at = "2027-03-01T02:00:00Z";
    await sql`
      select credits.grant(u, 10, 'bonus', 'soon:' || u, '2027-02-15T00:00:00Z'),
             credits.grant(u, 5, 'bonus', 'never:' || u)
        from unnest(${users}::uuid[]) u`;
    // Every other user holds 3 credits (drawn from the soon-expiring grant) until Feb 10, 00:01.
    const holders = users.filter((_, i) => i % 2 === 0);
    await sql`
      select credits.reserve(u, 3, 'hold:' || u, 60, null, '2027-02-10T00:00:00Z')
        from unnest(${holders}::uuid[]) u`;
    const [answer] = await sql<{ expired: number; granted: number }[]>`
      call credits.run_daily(${at}::timestamptz, 'scheduler', 30)`;
    assert.deepEqual([answer.expired, answer.granted], [200, 200]);
    const [record] = await runs(sql);
    assert.deepEqual([record.status, record.batches_done], ["done", 7]);
    const [counts] = await sql<{ open: number; releases: number; expiries: number }[]>`
      select (select count(*) from credits.reservations where status = 'open')::int as open,
             (select count(*) from credits.ledger where kind = 'release')::int as releases,
             (select count(*) from credits.ledger where kind = 'expiry' and amount = -10)::int
               as expiries`;
    assert.deepEqual({ ...counts }, { open: 0, releases: 100, expiries: 200 });
    for (const user of [users[0], users[1], users[99], users[198], users[199]]) {
      assert.equal(await assertBooksAgree(sql, user), 5 + 50);
      await assertHoldsAgree(sql, user);
    }
  });
});

Deno.test("run_daily inside a transaction block fails before it holds the run", async () => {
  await withDatabase(async ({ sql }) => {
    await seedUsers(sql, 10);
    await assert.rejects(
      sql.begin((tx) => tx`call credits.run_daily(${AT}::timestamptz)`),
      (error: { code?: string }) => error.code === "2D000",
    );
    const [{ held }] = await sql<{ held: boolean }[]>`select credits.daily_run_held() as held`;
    assert.equal(held, false, "no session was left holding the daily-run lock");
    const [answer] = await sql<{ granted: number }[]>`call credits.run_daily(${AT}::timestamptz)`;
    assert.equal(answer.granted, 10);
    assert.deepEqual((await runs(sql)).map((r) => r.status), ["done"]);
  });
});

Deno.test("run_daily refuses a batch size below 1", async () => {
  await withDatabase(async ({ sql }) => {
    await assert.rejects(
      sql`call credits.run_daily(${AT}::timestamptz, 'scheduler', 0)`,
      (error: { code?: string }) => error.code === "22023",
    );
  });
});

Deno.test("the daily-run lock is the session lock 7461021006, and daily_run_held sees it", async () => {
  await withDatabase(async ({ sql, url }) => {
    const named = connect(url, { max: 1 });
    const literal = connect(url, { max: 1 });
    try {
      const held = async (client: Sql) =>
        (await client<{ key: string }[]>`
          select ((classid::bigint << 32) + objid::bigint)::text as key from pg_locks
           where locktype = 'advisory' and pid = pg_backend_pid()`).map((r) => r.key);
      const [{ got }] = await named<{ got: boolean }[]>`select credits.try_lock_daily_run() as got`;
      assert.equal(got, true);
      assert.deepEqual(await held(named), ["7461021006"]);
      const [{ other }] = await literal<{ other: boolean }[]>`
        select pg_try_advisory_lock(7461021006) as other`;
      assert.equal(other, false, "the same lock as the literal");
      const [{ busy }] = await sql<{ busy: boolean }[]>`select credits.daily_run_held() as busy`;
      assert.equal(busy, true);
      const [{ released }] = await named<{ released: boolean }[]>`
        select credits.unlock_daily_run() as released`;
      assert.equal(released, true);
      const [{ idle }] = await sql<{ idle: boolean }[]>`select credits.daily_run_held() as idle`;
      assert.equal(idle, false);
    } finally {
      await Promise.all([named.end(), literal.end()]);
    }
  });
});
