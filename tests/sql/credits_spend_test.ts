// credits.grant, credits.consume, credits.balance and credits.expire_due against real PostgreSQL:
// the contract's SQLSTATEs, idempotency, spend order, expiry and the ledger's guarantees.
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";
import { assertBooksAt, books } from "../helpers/books.ts";
import { assertSqlState } from "../helpers/assert.ts";

type Totals = { grants: number; ledger: number; balances: number; remaining: number };

/** Everything a credit function may write, summed over all users: equal before and after = no change. */
async function totals(sql: Sql): Promise<Totals> {
  const [row] = await sql<Totals[]>`
    select (select count(*) from credits.grants)::bigint as grants,
           (select count(*) from credits.ledger)::bigint as ledger,
           (select coalesce(sum(balance), 0) from credits.balances)::bigint as balances,
           (select coalesce(sum(remaining), 0) from credits.grants)::bigint as remaining`;
  return { ...row };
}

async function balance(sql: Sql, user: string, at?: Date): Promise<number> {
  const [row] = at
    ? await sql<{ b: number }[]>`select credits.balance(${user}, ${at}) as b`
    : await sql<{ b: number }[]>`select credits.balance(${user}) as b`;
  return row.b;
}

async function grant(
  sql: Sql,
  user: string,
  amount: number,
  key: string,
  expiresAt: Date | null = null,
): Promise<number> {
  const [row] = await sql<{ id: number }[]>`
    select credits.grant(${user}, ${amount}, 'bonus', ${key}, ${expiresAt}) as id`;
  return row.id;
}

async function consume(
  sql: Sql,
  user: string,
  amount: number,
  key: string,
  at?: Date,
): Promise<number> {
  const [row] = at
    ? await sql<
      { b: number }[]
    >`select credits.consume(${user}, ${amount}, ${key}, null, ${at}) as b`
    : await sql<{ b: number }[]>`select credits.consume(${user}, ${amount}, ${key}) as b`;
  return row.b;
}

async function dbNow(sql: Sql): Promise<Date> {
  const [row] = await sql<{ now: Date }[]>`select now() as now`;
  return row.now;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const later = (at: Date, ms: number) => new Date(at.getTime() + ms);

Deno.test("a non-positive amount or an unknown kind raises 22023 and changes nothing", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await grant(sql, user, 10, "seed");
    const before = await totals(sql);
    for (const amount of [0, -5]) {
      await assertSqlState(
        () => sql`select credits.grant(${user}, ${amount}, 'bonus', ${`g${amount}`})`,
        "22023",
      );
      await assertSqlState(
        () => sql`select credits.consume(${user}, ${amount}, ${`c${amount}`})`,
        "22023",
      );
    }
    await assertSqlState(
      () => sql`select credits.grant(${user}, 5, 'gift', 'bad-kind')`,
      "22023",
    );
    await assertSqlState(() => sql`select credits.consume(${user}, 1, '')`, "22023");
    assert.deepEqual(await totals(sql), before);
  });
});

Deno.test("an unknown user raises 23503 from grant, consume and balance", async () => {
  await withDatabase(async ({ sql }) => {
    const nobody = crypto.randomUUID();
    const before = await totals(sql);
    await assertSqlState(() => sql`select credits.grant(${nobody}, 5, 'bonus', 'k1')`, "23503");
    await assertSqlState(() => sql`select credits.consume(${nobody}, 5, 'c1')`, "23503");
    await assertSqlState(() => sql`select credits.balance(${nobody})`, "23503");
    assert.deepEqual(await totals(sql), before);
  });
});

Deno.test("a source key already used by another user raises 23505 and changes nothing", async () => {
  await withDatabase(async ({ sql }) => {
    const alice = await insertUser(sql);
    const bob = await insertUser(sql);
    const id = await grant(sql, alice, 10, "shared-key");
    const before = await totals(sql);
    await assertSqlState(
      () => sql`select credits.grant(${bob}, 10, 'bonus', 'shared-key')`,
      "23505",
    );
    assert.deepEqual(await totals(sql), before);
    assert.equal(await balance(sql, bob), 0);
    assert.equal(await grant(sql, alice, 10, "shared-key"), id);
  });
});

Deno.test("a repeated grant key returns the same id and changes nothing", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const id = await grant(sql, user, 10, "once");
    const before = await totals(sql);
    // Different amount, kind and expiry: the key alone decides.
    const [{ again }] = await sql<{ again: number }[]>`
      select credits.grant(${user}, 99, 'adjustment', 'once', now() + interval '1 day', 'x') as again`;
    assert.equal(again, id);
    assert.deepEqual(await totals(sql), before);
    assertBooksAt(await books(sql, user), 10);
  });
});

Deno.test("a short balance raises CR001, records nothing, and the key succeeds after a top-up", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await grant(sql, user, 10, "first");
    const before = await totals(sql);
    await assertSqlState(() => consume(sql, user, 15, "big"), "CR001");
    assert.deepEqual(await totals(sql), before);
    assertBooksAt(await books(sql, user), 10);

    await grant(sql, user, 10, "top-up");
    assert.equal(await consume(sql, user, 15, "big"), 5);
    const usage = await sql`
      select amount, balance_after from credits.ledger
       where user_id = ${user} and idempotency_key = 'big'`;
    assert.deepEqual([...usage], [{ amount: -15, balance_after: 5 }]);
    assertBooksAt(await books(sql, user), 5);
  });
});

Deno.test("a repeated consume key returns the first result and changes nothing", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await grant(sql, user, 20, "g");
    assert.equal(await consume(sql, user, 3, "k"), 17);
    const before = await totals(sql);
    assert.equal(await consume(sql, user, 3, "k"), 17, "a repeat returns the first balance-after");
    assert.deepEqual(await totals(sql), before);

    assert.equal(await consume(sql, user, 4, "other"), 13);
    // Even after later changes.
    assert.equal(await consume(sql, user, 3, "k"), 17);
    const [{ n }] = await sql<{ n: number }[]>`
      select count(*)::int as n from credits.ledger where user_id = ${user} and kind = 'usage'`;
    assert.equal(n, 2);
    assertBooksAt(await books(sql, user), 13);

    // The key is per user: another user may use the same one.
    const other = await insertUser(sql);
    await grant(sql, other, 5, "g2");
    assert.equal(await consume(sql, other, 2, "k"), 3);
  });
});

Deno.test("a consume key reused with another amount raises CR002 and changes nothing", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await grant(sql, user, 20, "g");
    assert.equal(await consume(sql, user, 3, "k"), 17);
    const before = await totals(sql);
    // Another amount, whether the balance could cover it or not, and also once the balance moved.
    await assertSqlState(() => consume(sql, user, 5, "k"), "CR002");
    await assertSqlState(() => consume(sql, user, 1000, "k"), "CR002");
    assert.deepEqual(await totals(sql), before);
    await grant(sql, user, 10, "later");
    await assertSqlState(() => consume(sql, user, 2, "k"), "CR002");
    assert.equal(await consume(sql, user, 3, "k"), 17, "the first amount still answers");
    assertBooksAt(await books(sql, user), 27);
    await assert.rejects(
      () => consume(sql, user, 4, "k"),
      /idempotency key "k" was already used with 3 credits, not 4/,
    );
  });
});

Deno.test("consumption spends soonest expiry first, never-expiring last, oldest first on ties", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const now = await dbNow(sql);
    const neverOld = await grant(sql, user, 5, "never-old");
    const inTenDays = await grant(sql, user, 5, "ten-days", later(now, 10 * DAY));
    const inTwoDaysOld = await grant(sql, user, 5, "two-days-old", later(now, 2 * DAY));
    const inTwoDaysNew = await grant(sql, user, 5, "two-days-new", later(now, 2 * DAY));
    const neverNew = await grant(sql, user, 5, "never-new");

    const steps: [number, number, [number, number][]][] = [
      [7, 18, [[inTwoDaysOld, 5], [inTwoDaysNew, 2]]],
      [6, 12, [[inTwoDaysNew, 3], [inTenDays, 3]]],
      [9, 3, [[inTenDays, 2], [neverOld, 5], [neverNew, 2]]],
      [3, 0, [[neverNew, 3]]],
    ];
    for (const [i, [amount, after, draws]] of steps.entries()) {
      assert.equal(await consume(sql, user, amount, `use-${i}`), after);
      const [row] = await sql<{ draws: { grant: number; amount: number }[] }[]>`
        select draws from credits.ledger where user_id = ${user} and idempotency_key = ${`use-${i}`}`;
      assert.deepEqual(row.draws.map((d) => [d.grant, d.amount]), draws, `draws of use-${i}`);
    }
    const left =
      await sql`select remaining from credits.grants where user_id = ${user} and remaining > 0`;
    assert.equal(left.length, 0);
    assertBooksAt(await books(sql, user), 0);
  });
});

Deno.test("an expired grant is neither spendable nor counted before expire_due runs", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const now = await dbNow(sql);
    const expiry = later(now, HOUR);
    const expiring = await grant(sql, user, 10, "expiring", expiry);
    const lasting = await grant(sql, user, 5, "lasting");

    assert.equal(await balance(sql, user, later(expiry, -1)), 15);
    assert.equal(await balance(sql, user, expiry), 5, "a grant has expired at its expires_at");
    const before = await totals(sql);
    await assertSqlState(() => consume(sql, user, 6, "too-much", expiry), "CR001");
    assert.deepEqual(await totals(sql), before, "a refused consumption records no expiry either");

    // The next consumption writes the expiry entry first, then spends only what is left.
    assert.equal(await consume(sql, user, 5, "all", later(expiry, 1000)), 0);
    const ledger = await sql<
      { kind: string; amount: number; balance_after: number; grant_id: number | null }[]
    >`
      select kind, amount, balance_after, grant_id from credits.ledger
       where user_id = ${user} order by id`;
    assert.deepEqual(ledger.map((r) => [r.kind, r.amount, r.balance_after, r.grant_id]), [
      ["bonus", 10, 10, expiring],
      ["bonus", 5, 15, lasting],
      ["expiry", -10, 5, expiring],
      ["usage", -5, 0, null],
    ]);
    const [usage] = await sql<{ draws: unknown }[]>`
      select draws from credits.ledger where user_id = ${user} and kind = 'usage'`;
    assert.deepEqual(usage.draws, [{ grant: lasting, amount: 5 }]);
    assertBooksAt(await books(sql, user), 0);
    assert.equal(
      await sql`select 1 from credits.grants where expired_at is null and id = ${expiring}`.then((
        r,
      ) => r.length),
      0,
    );
  });
});

Deno.test("the ledger lags an expiry until the user's next grant, which records it first", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const now = await dbNow(sql);
    // A grant may be made already expired (a late webhook, say): it never counts.
    const stale = await grant(sql, user, 8, "stale", later(now, -60_000));
    assert.equal(await balance(sql, user), 0);
    const [lag] = await sql<{ stored: number }[]>`
      select balance as stored from credits.balances where user_id = ${user}`;
    assert.equal(
      lag.stored,
      8,
      "until recorded, the stored balance still shows the expired credits",
    );

    const fresh = await grant(sql, user, 3, "fresh");
    const ledger = await sql<
      { kind: string; amount: number; balance_after: number; grant_id: number }[]
    >`
      select kind, amount, balance_after, grant_id from credits.ledger where user_id = ${user} order by id`;
    assert.deepEqual(ledger.map((r) => [r.kind, r.amount, r.balance_after, r.grant_id]), [
      ["bonus", 8, 8, stale],
      ["expiry", -8, 0, stale],
      ["bonus", 3, 3, fresh],
    ]);
    assertBooksAt(await books(sql, user), 3);
    assert.equal(await balance(sql, user), 3);
  });
});

Deno.test("expire_due expires every due grant once and returns how many", async () => {
  await withDatabase(async ({ sql }) => {
    const [a, b, c] = [await insertUser(sql), await insertUser(sql), await insertUser(sql)];
    const now = await dbNow(sql);
    const t1 = later(now, HOUR);
    const t2 = later(now, 2 * HOUR);
    await grant(sql, a, 10, "a1", t1);
    await grant(sql, a, 6, "a2", t1);
    await grant(sql, a, 4, "a-never");
    await consume(sql, a, 13, "a-use"); // takes a1 whole and 3 of a2
    await grant(sql, b, 7, "b1", t1);
    await grant(sql, b, 9, "b2", t2);
    await grant(sql, c, 5, "c1", t1);
    await consume(sql, c, 5, "c-use"); // nothing left to expire on c1

    assert.equal(await balance(sql, a, t1), 4);
    const [{ n: early }] = await sql<{ n: number }[]>`select credits.expire_due(${
      later(t1, -1)
    }) as n`;
    assert.equal(early, 0);

    const [{ n }] = await sql<{ n: number }[]>`select credits.expire_due(${t1}) as n`;
    assert.equal(n, 2, "a2 (3 left) and b1; a1 and c1 were spent");
    const expiries = await sql<{ key: string; amount: number; balance_after: number }[]>`
      select g.source_key as key, l.amount, l.balance_after
        from credits.ledger l join credits.grants g on g.user_id = l.user_id and g.id = l.grant_id
       where l.kind = 'expiry' order by g.source_key`;
    assert.deepEqual(expiries.map((r) => [r.key, r.amount, r.balance_after]), [
      ["a2", -3, 4],
      ["b1", -7, 9],
    ]);
    const before = await totals(sql);
    const [{ n: again }] = await sql<{ n: number }[]>`select credits.expire_due(${t1}) as n`;
    assert.equal(again, 0, "idempotent");
    assert.deepEqual(await totals(sql), before);

    assertBooksAt(await books(sql, a), 4);
    assertBooksAt(await books(sql, b), 9);
    assertBooksAt(await books(sql, c), 0);
    const [{ n: second }] = await sql<{ n: number }[]>`select credits.expire_due(${t2}) as n`;
    assert.equal(second, 1);
    assertBooksAt(await books(sql, b), 0);
  });
});

Deno.test("every change of balance is one ledger row with its cause", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const id = await sql<{ id: number }[]>`
      select credits.grant(${user}, 12, 'adjustment', 'adj-1', null, 'support credit') as id`
      .then(([r]) => r.id);
    await sql`select credits.consume(${user}, 2, 'job-42', 'render a video')`;
    const rows = await sql`
      select kind, amount, balance_after, description, grant_id, idempotency_key, draws,
             created_at is not null as dated
        from credits.ledger where user_id = ${user} order by id`;
    assert.deepEqual([...rows], [
      {
        kind: "adjustment",
        amount: 12,
        balance_after: 12,
        description: "support credit",
        grant_id: id,
        idempotency_key: null,
        draws: null,
        dated: true,
      },
      {
        kind: "usage",
        amount: -2,
        balance_after: 10,
        description: "render a video",
        grant_id: null,
        idempotency_key: "job-42",
        draws: [{ grant: id, amount: 2 }],
        dated: true,
      },
    ]);
  });
});

Deno.test("the ledger is append-only and the tables refuse impossible amounts", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await grant(sql, user, 10, "g");
    await consume(sql, user, 4, "c");
    const before = await totals(sql);
    await assertSqlState(
      () => sql`update credits.ledger set amount = 100 where user_id = ${user}`,
      "42501",
    );
    await assertSqlState(() => sql`delete from credits.ledger where user_id = ${user}`, "42501");
    await assertSqlState(() => sql`truncate credits.ledger`, "42501");
    await assertSqlState(
      () => sql`update credits.grants set remaining = amount + 1 where user_id = ${user}`,
      "23514",
    );
    await assertSqlState(
      () => sql`update credits.grants set remaining = -1 where user_id = ${user}`,
      "23514",
    );
    await assertSqlState(
      () => sql`update credits.balances set balance = -1 where user_id = ${user}`,
      "23514",
    );
    await assertSqlState(
      () =>
        sql`insert into credits.grants (user_id, kind, amount, remaining, source_key)
          values (${user}, 'bonus', 1, 1, 'g')`,
      "23505",
    );
    assert.deepEqual(await totals(sql), before);
  });
});
