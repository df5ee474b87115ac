// app.signup's starting credits and credits.daily_signin, at the SQL level.
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { withDatabase } from "../helpers/db.ts";
import { assertSqlState } from "../helpers/assert.ts";

const HOUR = 3_600_000;

/** UTC midnight a few days ahead: grants made "then" are not expired by the real clock meanwhile. */
function futureUtcMidnight(daysAhead: number): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + daysAhead));
}

/** 20:00 UTC on the last day of next month: already the 1st of the month after in Shanghai. */
function lastEveningOfNextMonth(): Date {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 2, 1) - 4 * HOUR);
}

function utcMonth(at: Date): string {
  return at.toISOString().slice(0, 7);
}

async function signup(sql: Sql, email: string, at: Date): Promise<string> {
  const [row] = await sql<
    { id: string }[]
  >`select app.signup(${email}, 'hash', 'Ann', ${at}) as id`;
  return row.id;
}

Deno.test("sign-up grants the gift and the free month's credits in the same transaction", async () => {
  await withDatabase(async ({ sql }) => {
    const at = lastEveningOfNextMonth();
    const session = await sql.reserve();
    let user: string;
    try {
      await session`set timezone to 'Asia/Shanghai'`;
      user = await signup(session, "  Ann@Example.COM ", at);
    } finally {
      await session`reset timezone`;
      session.release();
    }

    const grants = await sql<
      { kind: string; key: string; amount: number; expires: string; same_tx: boolean }[]
    >`
      select g.kind, g.source_key as key, g.amount, app.iso(g.expires_at) as expires,
             g.xmin = u.xmin as same_tx
        from credits.grants g join app.users u on u.id = g.user_id
       where g.user_id = ${user} order by g.id`;
    const in30Days = new Date(at.getTime() + 30 * 24 * HOUR).toISOString();
    assert.deepEqual(grants.map((g) => [g.kind, g.key, g.amount, g.expires, g.same_tx]), [
      ["signup_gift", `signup_gift:${user}`, 50, in30Days, true],
      ["free_monthly", `free_monthly:${user}:${utcMonth(at)}`, 50, in30Days, true],
    ]);
    const [ledger] = await sql<{ n: number; same_tx: boolean }[]>`
      select count(*)::int as n, bool_and(l.xmin = u.xmin) as same_tx
        from credits.ledger l join app.users u on u.id = l.user_id where l.user_id = ${user}`;
    assert.deepEqual({ ...ledger }, { n: 2, same_tx: true });
    const [me] = await sql<{ email: string; balance: number }[]>`
      select u.email, credits.balance(u.id, ${at}) as balance from app.users u where u.id = ${user}`;
    assert.deepEqual({ ...me }, { email: "ann@example.com", balance: 100 });

    // The month's distribution finds the free credits already granted under the same key.
    const [{ n }] = await sql<{ n: number }[]>`select credits.distribute_monthly(${at}) as n`;
    assert.equal(n, 0);
  });
});

Deno.test("a taken email raises 23505 and creates nothing", async () => {
  await withDatabase(async ({ sql }) => {
    const at = futureUtcMidnight(2);
    await signup(sql, "bob@example.com", at);
    const count = async () =>
      (await sql<{ users: number; grants: number; ledger: number }[]>`
        select (select count(*) from app.users)::int as users,
               (select count(*) from credits.grants)::int as grants,
               (select count(*) from credits.ledger)::int as ledger`)[0];
    const before = { ...(await count()) };
    await assertSqlState(() => signup(sql, " BOB@example.com", at), "23505");
    assert.deepEqual({ ...(await count()) }, before);
  });
});

Deno.test("daily sign-in grants once per UTC day", async () => {
  await withDatabase(async ({ sql }) => {
    const day = futureUtcMidnight(2);
    const user = await signup(sql, "cat@example.com", day);
    const signin = async (at: Date) =>
      (await sql<{ granted: number; balance: number }[]>`
        select granted, balance from credits.daily_signin(${user}, ${at})`)[0];

    const session = await sql.reserve();
    try {
      await session`set timezone to 'Asia/Shanghai'`;
      const at = (hours: number) => new Date(day.getTime() + hours * HOUR);
      // 15:00 and 17:00 UTC: one UTC day, although Shanghai's date changes at 16:00 UTC.
      assert.deepEqual({ ...(await signin(at(15))) }, { granted: 5, balance: 105 });
      assert.deepEqual({ ...(await signin(at(17))) }, { granted: 0, balance: 105 });
      assert.deepEqual({ ...(await signin(at(23.99))) }, { granted: 0, balance: 105 });
      assert.deepEqual({ ...(await signin(at(24))) }, { granted: 5, balance: 110 });
      const keys = await session<{ key: string; expires: string }[]>`
        select source_key as key, app.iso(expires_at) as expires from credits.grants
         where user_id = ${user} and kind = 'daily_signin' order by id`;
      assert.deepEqual(keys.map((k) => [k.key, k.expires]), [
        [`daily_signin:${user}:${day.toISOString().slice(0, 10)}`, at(15 + 7 * 24).toISOString()],
        [
          `daily_signin:${user}:${at(24).toISOString().slice(0, 10)}`,
          at(24 + 7 * 24).toISOString(),
        ],
      ]);
    } finally {
      await session`reset timezone`;
      session.release();
    }
    await assertSqlState(
      () => sql`select * from credits.daily_signin(${crypto.randomUUID()}, ${day})`,
      "23503",
    );
  });
});

Deno.test("expiry days are 24 hours each, whatever the session's daylight-saving time zone", async () => {
  await withDatabase(async ({ sql }) => {
    // 2026-11-01 is the end of daylight saving time in New York: a day in that session's calendar
    // is 25 hours long there, but a credit's expiry must not depend on the session.
    const signedUpAt = "2026-10-20T12:00:00.000Z";
    const expiry = await sql.reserve();
    try {
      await expiry`set timezone to 'America/New_York'`;
      const [{ id }] = await expiry<{ id: string }[]>`
        select app.signup('dst@test.local', null, '', ${signedUpAt}::timestamptz) as id`;
      await expiry`select credits.daily_signin(${id}, ${signedUpAt}::timestamptz)`;
      const grants = await expiry<{ kind: string; expires: string }[]>`
        select kind, app.iso(expires_at) as expires from credits.grants
         where user_id = ${id} order by id`;
      assert.deepEqual(grants.map((grant) => ({ ...grant })), [
        { kind: "signup_gift", expires: "2026-11-19T12:00:00.000Z" },
        { kind: "free_monthly", expires: "2026-11-19T12:00:00.000Z" },
        { kind: "daily_signin", expires: "2026-10-27T12:00:00.000Z" },
      ]);
      await expiry`select credits.distribute_monthly('2026-11-05T12:00:00Z'::timestamptz)`;
      const [free] = await expiry<{ expires: string }[]>`
        select app.iso(expires_at) as expires from credits.grants
         where user_id = ${id} and source_key = credits.free_monthly_key(${id}, '2026-11-05T12:00:00Z')`;
      assert.equal(free.expires, "2026-12-05T12:00:00.000Z");
    } finally {
      expiry.release();
    }
  });
});

Deno.test("app.login_begin admits 5 attempts per email and window, on parallel connections", async () => {
  await withDatabase(async ({ sql }) => {
    await signup(sql, "lock@example.com", new Date());
    const begin = () =>
      sql<{ attempt_id: string | null; locked_until: Date | null; password_hash: string | null }[]>`
        select * from app.login_begin('Lock@Example.com')`;
    const rows = (await Promise.all(Array.from({ length: 20 }, begin))).map((r) => r[0]);
    const admitted = rows.filter((r) => r.attempt_id !== null);
    assert.equal(admitted.length, 5);
    assert.ok(admitted.every((r) => r.password_hash === "hash" && r.locked_until === null));
    assert.ok(rows.filter((r) => r.attempt_id === null).every((r) => r.locked_until !== null));

    // A success forgets them all; failures that finish afterwards still count.
    const [user] = await sql<{ id: string }[]>`
      select id from app.users where email = 'lock@example.com'`;
    await sql`select app.login_succeeded(${user.id}, '\\x01'::bytea)`;
    for (const attempt of admitted.slice(0, 4)) {
      assert.equal(
        (await sql`select app.login_failed('lock@example.com', ${attempt.attempt_id})`)[0]
          .login_failed,
        null,
      );
    }
    const [fifth] = await sql<{ until: Date | null }[]>`
      select app.login_failed('lock@example.com', ${admitted[4].attempt_id}) as until`;
    assert.ok(fifth.until !== null, "the fifth failure locks");
    const [refused] = await begin();
    assert.equal(refused.attempt_id, null);
    assert.equal(refused.locked_until!.getTime(), fifth.until!.getTime());
  });
});

Deno.test("app.login_abandoned forgets an attempt whose password was never checked", async () => {
  await withDatabase(async ({ sql }) => {
    const attempts: string[] = [];
    for (let i = 0; i < 5; i++) {
      const [row] = await sql<{ attempt_id: string }[]>`
        select attempt_id from app.login_begin('gone@example.com')`;
      attempts.push(row.attempt_id);
    }
    const [full] = await sql<{ attempt_id: string | null }[]>`
      select attempt_id from app.login_begin('gone@example.com')`;
    assert.equal(full.attempt_id, null);
    await sql`select app.login_abandoned(${attempts[0]})`;
    const [again] = await sql<{ attempt_id: string | null }[]>`
      select attempt_id from app.login_begin('gone@example.com')`;
    assert.ok(again.attempt_id !== null);
  });
});

Deno.test("app.signup refuses with AC001 once the address made its sign-ups of the hour", async () => {
  await withDatabase(async ({ sql }) => {
    const at = new Date("2026-12-01T10:00:00Z");
    const from = (email: string, address: string, when: Date) =>
      sql`select app.signup(${email}, 'hash', '', ${when}, null, ${address}::inet, 2)`;
    await from("a1@example.com", "192.0.2.1", at);
    await from("a2@example.com", "192.0.2.1", new Date(at.getTime() + 10 * 60_000));
    await from("b1@example.com", "192.0.2.2", at);
    const limited = await assertSqlState(
      () => from("a3@example.com", "192.0.2.1", new Date(at.getTime() + 20 * 60_000)),
      "AC001",
    );
    assert.equal((limited as { detail?: string }).detail, "2400");
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from app.users where email = 'a3@example.com'`;
    assert.equal(row.n, 0);
    // An hour after the first, one slot is free again; a limit of 0 means none.
    await from("a3@example.com", "192.0.2.1", new Date(at.getTime() + HOUR));
    await sql`select app.signup('a4@example.com', 'hash', '', ${at}, null, '192.0.2.1'::inet, 0)`;
  });
});

Deno.test("the daily run purges old failed logins, ended locks and sign-up records past their hour", async () => {
  await withDatabase(async ({ sql }) => {
    const at = new Date("2026-12-01T10:00:00Z");
    const ago = (minutes: number) => new Date(at.getTime() - minutes * 60_000);
    await sql`insert into app.login_failures (email, failed_at) values
                ('old@example.com', ${ago(16)}), ('new@example.com', ${ago(5)})`;
    await sql`insert into app.login_locks (email, locked_until) values
                ('ended@example.com', ${ago(1)}), ('locked@example.com', ${ago(-5)})`;
    await sql`insert into app.signup_log (address, signed_up_at) values
                ('192.0.2.1', ${ago(61)}), ('192.0.2.2', ${ago(30)})`;
    await sql`call credits.run_daily(${at}::timestamptz)`;
    const left = await sql<{ what: string }[]>`
      select email as what from app.login_failures
      union all select email from app.login_locks
      union all select host(address) from app.signup_log order by 1`;
    assert.deepEqual(left.map((r) => r.what), [
      "192.0.2.2",
      "locked@example.com",
      "new@example.com",
    ]);
  });
});
