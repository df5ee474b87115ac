// credits.refund_usage (sql/credits_usage_refunds.sql): back to the grants a usage drew from.
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { assertSqlState } from "../helpers/assert.ts";
import { assertBooksAgree } from "../helpers/books.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";

async function usageOf(sql: Sql, user: string, key: string): Promise<number> {
  const [row] = await sql<{ id: number }[]>`
    select id from credits.ledger where user_id = ${user} and kind = 'usage'
       and idempotency_key = ${key}`;
  return row.id;
}

async function refund(sql: Sql, usage: number, amount: number | null, key: string, at?: Date) {
  const [row] = await sql<{ refunded: number; balance: number }[]>`
    select * from credits.refund_usage(${usage}, ${amount}, ${key}, null, ${at ?? new Date()})`;
  return { ...row };
}

async function remaining(sql: Sql, user: string): Promise<number[]> {
  const rows = await sql<{ remaining: number }[]>`
    select remaining from credits.grants where user_id = ${user} order by id`;
  return rows.map((r) => r.remaining);
}

Deno.test("a usage refund goes back to the grants the usage drew from, the last drawn first", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const soon = new Date(Date.now() + 3600_000);
    await sql`select credits.grant(${user}, 10, 'bonus', ${`${user}:a`}, ${soon})`;
    await sql`select credits.grant(${user}, 50, 'bonus', ${`${user}:b`})`;
    await sql`select credits.consume(${user}, 30, 'u')`;
    const usage = await usageOf(sql, user, "u");
    assert.deepEqual(await remaining(sql, user), [0, 30]);

    assert.deepEqual(await refund(sql, usage, 15, "r1"), { refunded: 15, balance: 45 });
    assert.deepEqual(await remaining(sql, user), [0, 45], "the never-expiring grant first");
    // The same key answers the first answer and changes nothing; another amount is refused.
    assert.deepEqual(await refund(sql, usage, 15, "r1"), { refunded: 15, balance: 45 });
    assert.deepEqual(await refund(sql, usage, null, "r1"), { refunded: 15, balance: 45 });
    await assertSqlState(refund(sql, usage, 5, "r1"), "CR002");
    // 15 are left to give back: more is refused, and changes nothing.
    await assertSqlState(refund(sql, usage, 16, "r2"), "CR005");
    assert.deepEqual(await refund(sql, usage, null, "r3"), { refunded: 15, balance: 60 });
    assert.deepEqual(await remaining(sql, user), [10, 50]);
    assert.deepEqual(await refund(sql, usage, null, "r4"), { refunded: 0, balance: 60 });
    await assertSqlState(refund(sql, usage, 1, "r5"), "CR005");
    await assertSqlState(refund(sql, usage, 0, "r6"), "22023");
    await assertSqlState(refund(sql, usage, 1, ""), "22023");
    await assertSqlState(refund(sql, 987654321, 1, "r7"), "CR007");
    assert.equal(await assertBooksAgree(sql, user), 60);
  });
});

Deno.test("a grant that has expired since the usage gets nothing back", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const ends = new Date(Date.now() + 3600_000);
    await sql`select credits.grant(${user}, 10, 'bonus', ${`${user}:a`}, ${ends})`;
    await sql`select credits.grant(${user}, 10, 'bonus', ${`${user}:b`})`;
    await sql`select credits.consume(${user}, 15, 'u')`;
    const usage = await usageOf(sql, user, "u");
    const after = new Date(ends.getTime() + 1000);
    // 10 came from the grant that has expired: only the 5 from the other can come back.
    await assertSqlState(refund(sql, usage, 6, "r", after), "CR005");
    assert.deepEqual(await refund(sql, usage, null, "r", after), { refunded: 5, balance: 10 });
    assert.equal(await assertBooksAgree(sql, user), 10);
  });
});

Deno.test("a settled reservation's usage is refunded like any other, and concurrent refunds never give back twice", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await sql`select credits.grant(${user}, 100, 'bonus', ${`${user}:a`})`;
    const [{ reservation_id }] = await sql`select * from credits.reserve(${user}, 40, 'r')`;
    const [{ usage_id }] = await sql`select * from credits.settle(${reservation_id}, 30)`;
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => refund(sql, usage_id, 4, `k${i}`)),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    assert.equal(ok, 7, "30 credits give back seven refunds of 4");
    assert.equal(await assertBooksAgree(sql, user), 70 + 28);
  }, { max: 20 });
});
