// credits.balance_at (sql/credits_balance_at.sql): the balance at an instant, from the ledger.
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";

async function at(sql: Sql, user: string, when: Date, now: Date) {
  const [row] = await sql<{ balance: number; reserved: number }[]>`
    select * from credits.balance_at(${user}, ${when}, ${now})`;
  return [row.balance, row.reserved];
}

Deno.test("the balance at the exact instants of ledger entries, between them, and after an unrecorded expiry", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const [{ t0 }] = await sql<{ t0: Date }[]>`select now() + interval '1 hour' as t0`;
    const t = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);
    // Grants are made now (before t0); everything else happens at t0 + minutes.
    await sql`select credits.grant(${user}, 100, 'bonus', ${`${user}:a`}, ${t(60)})`;
    await sql`select credits.grant(${user}, 20, 'bonus', ${`${user}:b`})`;
    await sql`select credits.consume(${user}, 30, 'c1', null, ${t(10)})`; // 90 left: 70 + 20
    await sql`select * from credits.reserve(${user}, 50, 'r', 1200, null, ${t(20)})`; // to t(40)
    await sql`select credits.consume(${user}, 5, 'c2', null, ${t(30)})`;
    // Nothing is recorded after t(30): the reservation ends at t(40), the first grant at t(60).
    const now = t(90);
    assert.deepEqual(await at(sql, user, t(0), now), [120, 0]);
    assert.deepEqual(await at(sql, user, t(10), now), [90, 0], "at the consumption's instant");
    assert.deepEqual(await at(sql, user, t(15), now), [90, 0]);
    assert.deepEqual(await at(sql, user, t(20), now), [40, 50], "at the reservation's instant");
    assert.deepEqual(await at(sql, user, t(30), now), [35, 50]);
    assert.deepEqual(await at(sql, user, new Date(t(40).getTime() - 1), now), [35, 50]);
    assert.deepEqual(await at(sql, user, t(40), now), [85, 0], "the hold ended at its expiresAt");
    // The first grant's 65 unspent credits expire at t(60), though no entry says so yet.
    assert.deepEqual(await at(sql, user, t(60), now), [20, 0]);
    assert.deepEqual(await at(sql, user, t(120), now), [20, 0], "a future instant");

    // Once recorded (a consumption at t(70)), the past reads the same.
    await sql`select credits.consume(${user}, 1, 'c3', null, ${t(70)})`;
    for (
      const [minute, expected] of [[20, [40, 50]], [40, [85, 0]], [60, [20, 0]], [70, [
        19,
        0,
      ]]] as const
    ) {
      assert.deepEqual(
        await at(sql, user, t(minute), now),
        expected,
        `t(${minute}) after recording`,
      );
    }
    const [{ n }] = await sql`
      select count(*)::int as n from credits.ledger where user_id = ${user}
         and kind in ('release', 'expiry')`;
    assert.equal(n, 2);
  });
});
