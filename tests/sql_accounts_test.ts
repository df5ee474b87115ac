// app.signup's starting credits and credits.daily_signin, at the SQL level.
import assert from "node:assert/strict";
import { type Sql, sqlState } from "../db/client.ts";
import { withDatabase } from "./helpers/db.ts";

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
    await assert.rejects(
      () => signup(sql, " BOB@example.com", at),
      (error: unknown) => sqlState(error) === "23505",
    );
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
    await assert.rejects(
      () => sql`select * from credits.daily_signin(${crypto.randomUUID()}, ${day})`,
      (error: unknown) => sqlState(error) === "23503",
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
