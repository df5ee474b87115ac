// credits.distribute_monthly and credits.run_daily: the free plan's monthly credits, yearly and
// lifetime month slots, who counts as paying, repeated runs and UTC months in any time zone.
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";

async function distribute(sql: Sql, at: string): Promise<number> {
  const [row] = await sql<
    { n: number }[]
  >`select credits.distribute_monthly(${at}::timestamptz) as n`;
  return row.n;
}

async function grantsOf(sql: Sql, user: string, kind: string): Promise<string[]> {
  const rows = await sql<{ key: string }[]>`
    select source_key as key from credits.grants where user_id = ${user} and kind = ${kind} order by id`;
  return rows.map((r) => r.key);
}

async function subscribe(
  sql: Sql,
  user: string,
  options: {
    interval: "month" | "year";
    status?: string;
    start: string;
    end: string;
    ref?: string;
  },
): Promise<number> {
  const price = options.interval === "year" ? "price_pro_yearly" : "price_pro_monthly";
  const [row] = await sql<{ id: number }[]>`
    insert into billing.subscriptions (user_id, provider, provider_ref, plan_id, price_id, interval,
                                       status, current_period_start, current_period_end)
    values (${user}, 'stripe', ${options.ref ?? `sub_${crypto.randomUUID()}`}, 'pro', ${price},
            ${options.interval}, ${options.status ?? "active"}, ${options.start}::timestamptz,
            ${options.end}::timestamptz)
    returning id`;
  return row.id;
}

async function buy(
  sql: Sql,
  user: string,
  options: { kind: "lifetime" | "package"; paidAt: string; refundedAt?: string },
): Promise<number> {
  const price = options.kind === "lifetime" ? "price_lifetime" : "price_pkg_standard";
  const [row] = await sql<{ id: number }[]>`
    insert into billing.payments (user_id, provider, provider_ref, price_id, kind, amount, currency,
                                  paid_at, refunded_amount, refunded_at)
    values (${user}, 'stripe', ${`pi_${crypto.randomUUID()}`}, ${price}, ${options.kind}, 19900,
            'usd', ${options.paidAt}::timestamptz, ${options.refundedAt ? 19900 : 0},
            ${options.refundedAt ?? null}::timestamptz)
    returning id`;
  return row.id;
}

/** Runs fn on one connection of the pool whose session time zone is Asia/Shanghai. */
async function inShanghai(sql: Sql, fn: (session: Sql) => Promise<void>): Promise<void> {
  const session = await sql.reserve();
  try {
    await session`set timezone to 'Asia/Shanghai'`;
    await fn(session);
  } finally {
    await session`reset timezone`;
    session.release();
  }
}

Deno.test("the free plan's credits arrive once per UTC calendar month", async () => {
  await withDatabase(async ({ sql }) => {
    const users = [await insertUser(sql), await insertUser(sql), await insertUser(sql)];
    assert.equal(await distribute(sql, "2026-03-10T08:00:00Z"), 3);
    assert.equal(await distribute(sql, "2026-03-10T08:00:00Z"), 0);
    assert.equal(await distribute(sql, "2026-03-01T00:00:00Z"), 0);
    assert.equal(await distribute(sql, "2026-03-31T23:59:59Z"), 0);
    assert.equal(await distribute(sql, "2026-04-01T00:00:00Z"), 3);

    const rows = await sql<{ amount: number; expires: string; after: number }[]>`
      select g.amount, to_char(g.expires_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') as expires,
             l.balance_after as after
        from credits.grants g
        join credits.ledger l on l.user_id = g.user_id and l.grant_id = g.id and l.kind = 'free_monthly'
       where g.user_id = ${users[0]} order by g.id`;
    assert.deepEqual(rows.map((r) => [r.amount, r.expires, r.after]), [
      [50, "2026-04-09 08:00", 50],
      [50, "2026-05-01 00:00", 100],
    ]);
    for (const user of users) {
      const [b] = await sql<
        { balance: number }[]
      >`select balance from credits.balances where user_id = ${user}`;
      assert.equal(b.balance, 100);
    }
  });
});

Deno.test("users on a paid plan get no free credits; the others do", async () => {
  await withDatabase(async ({ sql }) => {
    const at = "2026-06-20T12:00:00Z";
    const monthly = await insertUser(sql);
    await subscribe(sql, monthly, {
      interval: "month",
      start: "2026-06-05T00:00:00Z",
      end: "2026-07-05T00:00:00Z",
    });
    const trialing = await insertUser(sql);
    await subscribe(sql, trialing, {
      interval: "month",
      status: "trialing",
      start: "2026-06-15T00:00:00Z",
      end: "2026-06-29T00:00:00Z",
    });
    const lifetime = await insertUser(sql);
    await buy(sql, lifetime, { kind: "lifetime", paidAt: "2026-06-01T00:00:00Z" });
    const refunded = await insertUser(sql);
    await buy(sql, refunded, {
      kind: "lifetime",
      paidAt: "2026-05-01T00:00:00Z",
      refundedAt: "2026-05-03T00:00:00Z",
    });
    const canceled = await insertUser(sql);
    await subscribe(sql, canceled, {
      interval: "month",
      status: "canceled",
      start: "2026-06-05T00:00:00Z",
      end: "2026-07-05T00:00:00Z",
    });
    const lapsed = await insertUser(sql); // still "active" in our copy, but the period is over
    await subscribe(sql, lapsed, {
      interval: "month",
      start: "2026-05-01T00:00:00Z",
      end: "2026-06-01T00:00:00Z",
    });
    const packageBuyer = await insertUser(sql);
    await buy(sql, packageBuyer, { kind: "package", paidAt: "2026-06-02T00:00:00Z" });
    const free = await insertUser(sql);

    assert.equal(await distribute(sql, at), 5 + 1, "five free users and lifetime slot 0");
    for (const user of [monthly, trialing, lifetime]) {
      assert.deepEqual(await grantsOf(sql, user, "free_monthly"), []);
    }
    for (const user of [refunded, canceled, lapsed, packageBuyer, free]) {
      assert.deepEqual(await grantsOf(sql, user, "free_monthly"), [`free_monthly:${user}:2026-06`]);
    }
    assert.equal((await grantsOf(sql, lifetime, "lifetime_monthly")).length, 1);
    assert.deepEqual(await grantsOf(sql, refunded, "lifetime_monthly"), []);
    // A monthly subscription's credits come with its payments, never from the daily job.
    const [{ n }] = await sql<{ n: number }[]>`
      select count(*)::int as n from credits.grants where user_id in (${monthly}, ${trialing})`;
    assert.equal(n, 0);
  });
});

Deno.test("a yearly subscription gets twelve month slots and none after its period ends", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await subscribe(sql, user, {
      interval: "year",
      start: "2026-01-15T10:00:00Z",
      end: "2027-01-15T10:00:00Z",
    });
    const slots = async () => (await grantsOf(sql, user, "subscription_monthly")).length;

    assert.equal(await distribute(sql, "2026-01-15T10:00:00Z"), 1);
    assert.equal(await slots(), 1);
    await distribute(sql, "2026-02-15T09:59:59Z");
    assert.equal(await slots(), 1, "slot 1 starts one month after the period start, not before");
    await distribute(sql, "2026-02-15T10:00:00Z");
    assert.equal(await slots(), 2);
    // Missed runs catch up: every started slot is granted, each once.
    assert.equal(await distribute(sql, "2026-12-20T00:00:00Z"), 10);
    assert.equal(await distribute(sql, "2027-01-15T09:00:00Z"), 0);
    assert.equal(await slots(), 12);
    const keys = await grantsOf(sql, user, "subscription_monthly");
    assert.deepEqual(keys.map((k) => Number(k.split(":").at(-1))), [...Array(12).keys()]);

    // Past the period end with no renewal recorded: no slot 12, and the user is on the free plan.
    await distribute(sql, "2027-01-16T00:00:00Z");
    assert.equal(await slots(), 12);
    assert.equal((await grantsOf(sql, user, "free_monthly")).length, 1);

    // The renewal starts a new year of slots with keys of their own.
    await sql`update billing.subscriptions
                 set current_period_start = '2027-01-15T10:00:00Z', current_period_end = '2028-01-15T10:00:00Z'
               where user_id = ${user}`;
    assert.equal(await distribute(sql, "2027-01-16T00:00:00Z"), 1);
    assert.equal(await slots(), 13);
    const [{ amount }] = await sql<{ amount: number }[]>`
      select sum(amount)::bigint as amount from credits.grants where user_id = ${user} and kind = 'subscription_monthly'`;
    assert.equal(amount, 13 * 1000);
  });
});

Deno.test("a lifetime purchase gets a slot each month until it is refunded", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const payment = await buy(sql, user, { kind: "lifetime", paidAt: "2026-02-10T00:00:00Z" });
    assert.equal(await distribute(sql, "2026-02-10T00:00:00Z"), 1);
    assert.equal(await distribute(sql, "2026-03-09T23:59:59Z"), 0);
    assert.equal(await distribute(sql, "2026-05-12T00:00:00Z"), 3, "slots 1, 2 and 3");
    assert.equal(await distribute(sql, "2026-05-12T00:00:00Z"), 0);
    assert.deepEqual(
      await grantsOf(sql, user, "lifetime_monthly"),
      [0, 1, 2, 3].map((slot) => `lifetime_monthly:${payment}:${slot}`),
    );
    assert.deepEqual(await grantsOf(sql, user, "free_monthly"), []);

    await sql`update billing.payments set refunded_amount = amount, refunded_at = '2026-05-20T00:00:00Z'
               where user_id = ${user}`;
    assert.equal(await distribute(sql, "2026-06-12T00:00:00Z"), 1, "the free plan only");
    assert.equal((await grantsOf(sql, user, "lifetime_monthly")).length, 4);
    assert.equal((await grantsOf(sql, user, "free_monthly")).length, 1);
  });
});

Deno.test("month slots that start on a short month's last day are granted that day (UTC)", async () => {
  await withDatabase(async ({ sql }) => {
    const yearly = await insertUser(sql);
    await subscribe(sql, yearly, {
      interval: "year",
      start: "2026-01-31T10:00:00Z",
      end: "2027-01-31T10:00:00Z",
    });
    const lifetime = await insertUser(sql);
    await buy(sql, lifetime, { kind: "lifetime", paidAt: "2026-01-31T10:00:00Z" });
    const count = async (user: string, kind: string) => (await grantsOf(sql, user, kind)).length;

    await distribute(sql, "2026-02-28T09:59:59Z");
    assert.equal(await count(yearly, "subscription_monthly"), 1);
    assert.equal(await count(lifetime, "lifetime_monthly"), 1);
    await distribute(sql, "2026-02-28T10:00:00Z");
    assert.equal(await count(yearly, "subscription_monthly"), 2, "slot 1 starts on Feb 28");
    assert.equal(await count(lifetime, "lifetime_monthly"), 2, "slot 1 starts on Feb 28");
    await distribute(sql, "2026-04-30T10:00:00Z");
    assert.equal(await count(yearly, "subscription_monthly"), 4, "slots 2 (Mar 31) and 3 (Apr 30)");
    assert.equal(await count(lifetime, "lifetime_monthly"), 4);
  });
});

Deno.test("calendar months are UTC while the session's time zone is Asia/Shanghai", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await inShanghai(sql, async (session) => {
      const [{ zone }] = await session<
        { zone: string }[]
      >`select current_setting('TimeZone') as zone`;
      assert.equal(zone, "Asia/Shanghai");

      // 20:00 UTC on Nov 30 is already December 1 in Shanghai, but still November in UTC.
      await distribute(session, "2026-11-30T20:00:00Z");
      assert.deepEqual(await grantsOf(session, user, "free_monthly"), [
        `free_monthly:${user}:2026-11`,
      ]);
      assert.equal(await distribute(session, "2026-11-30T23:59:59Z"), 0);
      await distribute(session, "2026-12-01T00:00:00Z");
      assert.deepEqual(await grantsOf(session, user, "free_monthly"), [
        `free_monthly:${user}:2026-11`,
        `free_monthly:${user}:2026-12`,
      ]);
      // The free plan renews at the start of the next UTC month.
      const [plan] = await session<{ renews: string }[]>`
        select app.iso(renews_at) as renews from billing.plan_of(${user}, '2026-11-30T20:00:00Z')`;
      assert.equal(plan.renews, "2026-12-01T00:00:00.000Z");
    });
  });
});

Deno.test("month slots are UTC while the session's time zone is Asia/Shanghai", async () => {
  await withDatabase(async ({ sql }) => {
    const yearly = await insertUser(sql);
    // Jan 30 20:00 UTC is Jan 31 04:00 in Shanghai: in UTC slot 1 starts Feb 28 20:00 UTC, while
    // Shanghai's calendar would put it at Feb 28 04:00 local, i.e. Feb 27 20:00 UTC.
    await subscribe(sql, yearly, {
      interval: "year",
      start: "2026-01-30T20:00:00Z",
      end: "2027-01-30T20:00:00Z",
    });
    const lastDay = await insertUser(sql);
    await subscribe(sql, lastDay, {
      interval: "year",
      start: "2026-01-31T00:00:00Z",
      end: "2027-01-31T00:00:00Z",
    });
    await inShanghai(sql, async (session) => {
      await distribute(session, "2026-02-28T12:00:00Z");
      assert.equal(
        (await grantsOf(session, yearly, "subscription_monthly")).length,
        1,
        "slot 1 not yet",
      );
      assert.equal(
        (await grantsOf(session, lastDay, "subscription_monthly")).length,
        2,
        "Jan 31 + 1 month = Feb 28",
      );
      await distribute(session, "2026-02-28T20:00:00Z");
      assert.equal((await grantsOf(session, yearly, "subscription_monthly")).length, 2);
      const [expiry] = await session<{ at: string }[]>`
        select app.iso(max(expires_at)) as at from credits.grants where user_id = ${yearly}
           and kind = 'subscription_monthly'`;
      assert.equal(
        expiry.at,
        "2026-03-30T20:00:00.000Z",
        "expires creditsExpireInDays after the run",
      );
    });
  });
});

Deno.test("run_daily expires, then distributes, and logs each run with its counts", async () => {
  await withDatabase(async ({ sql }) => {
    const a = await insertUser(sql);
    const b = await insertUser(sql);
    await sql`select credits.grant(${a}, 10, 'bonus', 'a-old', '2026-12-01T00:00:00Z')`;
    await sql`select credits.grant(${b}, 10, 'bonus', 'b-old', '2026-12-01T00:00:00Z')`;
    const at = "2026-12-02T02:00:00Z";

    await sql`call credits.run_daily(${at}::timestamptz)`;
    await sql`call credits.run_daily(${at}::timestamptz)`;
    const [counted] = await sql<
      { expired: number; granted: number; duration_ms: number; run_id: number }[]
    >`call credits.run_daily(${at}::timestamptz, 'http')`;
    assert.deepEqual({
      ...counted,
      duration_ms: typeof counted.duration_ms,
      run_id: typeof counted.run_id,
    }, { expired: 0, granted: 0, duration_ms: "number", run_id: "number" });

    const runs = await sql<
      { run_at: string; expired: number; granted: number; trigger: string; done: boolean }[]
    >`
      select app.iso(run_at) as run_at, expired, granted, trigger,
             finished_at >= started_at and duration_ms >= 0 as done
        from credits.daily_runs order by id`;
    assert.deepEqual(runs.map((r) => [r.run_at, r.expired, r.granted, r.trigger, r.done]), [
      ["2026-12-02T02:00:00.000Z", 2, 2, "scheduler", true],
      ["2026-12-02T02:00:00.000Z", 0, 0, "scheduler", true],
      ["2026-12-02T02:00:00.000Z", 0, 0, "http", true],
    ]);
    // Expiry first: the ledger shows the expiry before the month's free credits.
    const kinds = await sql<{ kind: string; after: number }[]>`
      select kind, balance_after as after from credits.ledger where user_id = ${a} order by id`;
    assert.deepEqual(kinds.map((k) => [k.kind, k.after]), [["bonus", 10], ["expiry", 0], [
      "free_monthly",
      50,
    ]]);
  });
});

Deno.test("months_between_utc counts the month slots started, end of month included", async () => {
  await withDatabase(async ({ sql }) => {
    const cases: [string, string, number][] = [
      ["2026-01-31T10:00:00Z", "2026-02-28T09:59:59Z", 0],
      ["2026-01-31T10:00:00Z", "2026-02-28T10:00:00Z", 1],
      ["2026-01-31T10:00:00Z", "2026-04-30T10:00:00Z", 3],
      ["2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z", 1],
      ["2028-02-29T00:00:00Z", "2029-02-28T00:00:00Z", 12],
      ["2026-01-15T00:00:00Z", "2027-01-14T23:59:59Z", 11],
      ["2026-01-15T00:00:00Z", "2026-01-14T00:00:00Z", 0],
      ["2026-01-15T00:00:00Z", "2025-11-20T00:00:00Z", 0],
    ];
    for (const [from, to, months] of cases) {
      const [row] = await sql<{ m: number }[]>`
        select credits.months_between_utc(${from}::timestamptz, ${to}::timestamptz) as m`;
      assert.equal(row.m, months, `${from} -> ${to}`);
    }
  });
});

Deno.test("an unpaid yearly period (trialing, past due) gets no month slots until it is paid", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await subscribe(sql, user, {
      interval: "year",
      status: "trialing",
      start: "2026-03-01T00:00:00Z",
      end: "2027-03-01T00:00:00Z",
    });
    await distribute(sql, "2026-04-15T00:00:00Z");
    assert.deepEqual(
      await grantsOf(sql, user, "subscription_monthly"),
      [],
      "a trial is not a paid year",
    );
    assert.deepEqual(await grantsOf(sql, user, "free_monthly"), [], "nor the free plan");

    await sql`update billing.subscriptions set status = 'past_due' where user_id = ${user}`;
    await distribute(sql, "2026-05-15T00:00:00Z");
    assert.deepEqual(await grantsOf(sql, user, "subscription_monthly"), []);

    // Once paid, the started slots of the year arrive (0, 1 and 2), each once.
    await sql`update billing.subscriptions set status = 'active' where user_id = ${user}`;
    assert.equal(await distribute(sql, "2026-05-15T00:00:00Z"), 3);
    assert.equal(await distribute(sql, "2026-05-16T00:00:00Z"), 0);
  });
});
