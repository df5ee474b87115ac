// The SQL behind the pages (sql/ui.sql): admin adjustments and the usage chart's days.
import assert from "node:assert/strict";
import { insertUser, withDatabase } from "../helpers/db.ts";
import { sqlState } from "../../db/client.ts";
import { assertSqlState } from "../helpers/assert.ts";

type LedgerRow = { kind: string; amount: number; balance_after: number; description: string };

Deno.test("admin_adjust: positive grants, negative takes in spend order, both idempotent", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const soon = new Date(Date.now() + 86_400_000);
    await sql`select credits.grant(${user}, 30, 'bonus', 'never')`;
    await sql`select credits.grant(${user}, 20, 'bonus', 'soon', ${soon})`;

    const up = crypto.randomUUID();
    for (let i = 0; i < 2; i++) {
      const [{ balance }] = await sql<{ balance: number }[]>`
        select app.admin_adjust(${user}, 10, 'Goodwill', ${up}) as balance`;
      assert.equal(Number(balance), 60);
    }
    const down = crypto.randomUUID();
    for (let i = 0; i < 2; i++) {
      const [{ balance }] = await sql<{ balance: number }[]>`
        select app.admin_adjust(${user}, -25, ' Duplicate grant ', ${down}) as balance`;
      assert.equal(Number(balance), 35);
    }
    // The expiring grant went first (20), then the oldest never-expiring one (5).
    const grants = await sql<{ source_key: string; remaining: number }[]>`
      select source_key, remaining from credits.grants where user_id = ${user} order by id`;
    assert.deepEqual(grants.map((g) => [g.source_key, Number(g.remaining)]), [
      ["never", 25],
      ["soon", 0],
      [`adjustment:${up}`, 10],
    ]);
    const ledger = await sql<LedgerRow[]>`
      select kind, amount, balance_after, description from credits.ledger
       where user_id = ${user} and kind = 'adjustment' order by id`;
    assert.deepEqual(
      ledger.map((l) => [l.kind, Number(l.amount), Number(l.balance_after), l.description]),
      [["adjustment", 10, 60, "Goodwill"], ["adjustment", -25, 35, "Duplicate grant"]],
    );
  });
});

Deno.test("admin_adjust: refuses a missing reason, zero, and more than the balance", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await sql`select credits.grant(${user}, 5, 'bonus', 'five')`;
    const attempt = (amount: number, reason: string) =>
      sql`select app.admin_adjust(${user}, ${amount}, ${reason}, ${crypto.randomUUID()})`;
    await assertSqlState(attempt(5, "  "), "22023");
    await assertSqlState(attempt(0, "zero"), "22023");
    await assertSqlState(attempt(-6, "too much"), "CR001");
    await assertSqlState(
      sql`select app.admin_adjust(${crypto.randomUUID()}, -1, 'nobody', ${crypto.randomUUID()})`,
      "23503",
    );
    const [{ entries }] = await sql<{ entries: number }[]>`
      select count(*)::int as entries from credits.ledger where user_id = ${user}`;
    assert.equal(entries, 1, "refused adjustments record nothing");
  });
});

Deno.test("admin_adjust: a key reused with another amount or sign raises CR002, changes nothing", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await sql`select credits.grant(${user}, 50, 'bonus', 'fifty')`;
    const adjust = (amount: number, key: string) =>
      sql<{ balance: number }[]>`
        select app.admin_adjust(${user}, ${amount}, 'Goodwill', ${key}) as balance`
        .then(([row]) => Number(row.balance));
    const state = () =>
      sql`select (select count(*)::int from credits.ledger where user_id = ${user}) as entries,
                 (select balance from credits.balances where user_id = ${user}) as balance`
        .then(([row]) => ({ ...row }));
    const up = crypto.randomUUID();
    assert.equal(await adjust(25, up), 75);
    const down = crypto.randomUUID();
    assert.equal(await adjust(-5, down), 70);
    const before = await state();
    for (const [amount, key] of [[999, up], [-25, up], [-6, down], [5, down]] as const) {
      await assertSqlState(adjust(amount, key), "CR002", `${amount} with a used key`);
    }
    assert.deepEqual(await state(), before);
    // The same amount with its key answers the first result.
    assert.equal(await adjust(25, up), 75);
    assert.equal(await adjust(-5, down), 70);
    assert.deepEqual(await state(), before);
  });
});

Deno.test("admin_adjust: one key sent at once with +10 and -10 adjusts once, in one direction", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await sql`select credits.grant(${user}, 100, 'bonus', 'hundred')`;
    const key = crypto.randomUUID();
    const amounts = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? 10 : -10));
    const results = await Promise.allSettled(
      amounts.map((amount) =>
        sql`select app.admin_adjust(${user}, ${amount}, 'Goodwill', ${key}) as balance`
      ),
    );
    const taken = amounts.filter((_, i) => results[i].status === "fulfilled");
    assert.equal(taken.length, 4, "the four sends of one amount");
    assert.ok(taken.every((amount) => amount === taken[0]));
    for (const [i, result] of results.entries()) {
      if (result.status === "rejected") {
        assert.notEqual(amounts[i], taken[0]);
        assert.equal(sqlState(result.reason), "CR002");
      }
    }
    const [row] = await sql<{ balance: number; entries: number }[]>`
      select (select balance from credits.balances where user_id = ${user}) as balance,
             (select count(*)::int from credits.ledger
               where user_id = ${user} and kind = 'adjustment') as entries`;
    assert.deepEqual({ ...row }, { balance: 100 + taken[0], entries: 1 });
  }, { max: 8 });
});

Deno.test("adjust_down: concurrent removals never make a balance negative", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await sql`select credits.grant(${user}, 100, 'bonus', 'hundred')`;
    const results = await Promise.allSettled(
      Array.from(
        { length: 8 },
        () => sql`select app.admin_adjust(${user}, -30, 'cleanup', ${crypto.randomUUID()}) as b`,
      ),
    );
    const succeeded = results.filter((r) => r.status === "fulfilled").length;
    assert.equal(succeeded, 3);
    for (const r of results) {
      if (r.status === "rejected") assert.equal(sqlState(r.reason), "CR001");
    }
    const [{ balance }] = await sql<{ balance: number }[]>`
      select balance from credits.balances where user_id = ${user}`;
    assert.equal(Number(balance), 10);
  }, { max: 8 });
});

Deno.test("usage_by_day: 30 UTC days, oldest first, usage summed per UTC day", async () => {
  await withDatabase(async ({ sql }) => {
    await sql`set timezone = 'America/Los_Angeles'`;
    const user = await insertUser(sql);
    await sql`select credits.grant(${user}, 100, 'bonus', 'hundred')`;
    const now = "2026-03-10T00:30:00Z";
    await sql`select credits.consume(${user}, 3, 'a', null, '2026-03-09T23:59:00Z')`;
    await sql`select credits.consume(${user}, 4, 'b', null, '2026-03-10T00:10:00Z')`;
    await sql`select credits.consume(${user}, 5, 'c', null, '2026-02-08T12:00:00Z')`;
    const [{ usage }] = await sql<{ usage: { day: string; used: number }[] }[]>`
      select credits.usage_by_day(${user}, ${now}, 30) as usage`;
    assert.equal(usage.length, 30);
    assert.equal(usage[0].day, "2026-02-09");
    assert.deepEqual(usage.slice(-2), [{ day: "2026-03-09", used: 3 }, {
      day: "2026-03-10",
      used: 4,
    }]);
    assert.equal(usage.reduce((sum, d) => sum + d.used, 0), 7, "Feb 8 is outside the window");
  }, { max: 1 }); // one connection, so that the session time zone above applies to every call
});
