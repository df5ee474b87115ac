// credits.consume_batch (sql/credits_batch.sql): many consumptions in one statement.
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Sql } from "../../db/client.ts";
import { assertBooksAgree } from "../helpers/books.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";

type Event = { user: string | null; amount: number | string; key: string | null };
type Result = { n: number; status: string; balance: number | null; usage_id: number | null };

async function batch(sql: Sql, events: Event[], at = new Date()): Promise<Result[]> {
  return [...await sql<Result[]>`select * from credits.consume_batch(${sql.json(events)}, ${at})`];
}

async function userWith(sql: Sql, amount: number): Promise<string> {
  const user = await insertUser(sql);
  await sql`select credits.grant(${user}, ${amount}, 'bonus', ${`${user}:g`})`;
  return user;
}

Deno.test("a batch applies each event on its own: shortfalls, duplicates, unknown users, bad amounts", async () => {
  await withDatabase(async ({ sql }) => {
    const a = await userWith(sql, 100);
    const b = await userWith(sql, 5);
    await sql`select credits.consume(${a}, 10, 'before')`;
    const results = await batch(sql, [
      { user: a, amount: 60, key: "k1" },
      { user: a, amount: 50, key: "k2" }, // 30 left: refused
      { user: a, amount: 30, key: "k3" }, // exactly fits
      { user: a, amount: 60, key: "k1" }, // a duplicate answers the first
      { user: a, amount: 61, key: "k1" }, // the same key with another amount
      { user: a, amount: 10, key: "before" }, // used before this batch: the first answer
      { user: b, amount: 5, key: "k1" }, // another user's key space
      { user: crypto.randomUUID(), amount: 5, key: "x" },
      { user: a, amount: 0, key: "zero" },
      { user: a, amount: 1.5, key: "frac" },
      { user: a, amount: "3", key: "text" },
      { user: a, amount: 1, key: "" },
    ]);
    const [{ before }] = await sql`
      select balance_after as before from credits.ledger where idempotency_key = 'before'`;
    assert.deepEqual(results.map((r) => [r.status, r.balance]), [
      ["ok", 30],
      ["insufficient_credits", null],
      ["ok", 0],
      ["ok", 30],
      ["idempotency_key_reused", null],
      ["ok", before],
      ["ok", 0],
      ["unknown_user", null],
      ["invalid", null],
      ["invalid", null],
      ["invalid", null],
      ["invalid", null],
    ]);
    assert.equal(results[0].usage_id, results[3].usage_id);
    assert.equal(await assertBooksAgree(sql, a), 0);
    assert.equal(await assertBooksAgree(sql, b), 0);
  });
});

Deno.test("a batch gives the same answers and draws as the same consumptions one by one", async () => {
  await withDatabase(async ({ sql }) => {
    const events = fc.array(
      fc.record({ who: fc.integer({ min: 0, max: 2 }), amount: fc.integer({ min: 1, max: 40 }) }),
      { minLength: 1, maxLength: 30 },
    );
    const grants = fc.array(
      fc.record({
        amount: fc.integer({ min: 1, max: 50 }),
        hours: fc.option(fc.integer({ min: 1, max: 9 })),
      }),
      { minLength: 1, maxLength: 4 },
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(grants, events, async (grantList, eventList) => {
        run++;
        const pairs: [string, string][] = [];
        for (let i = 0; i < 3; i++) {
          const pair: string[] = [];
          for (const side of ["batch", "single"]) {
            const user = await insertUser(sql);
            for (const [j, g] of grantList.entries()) {
              const expires = g.hours === null ? null : new Date(Date.now() + g.hours * 3600_000);
              await sql`select credits.grant(${user}, ${g.amount + i}, 'bonus',
                                             ${`${user}:${side}:${j}`}, ${expires})`;
            }
            pair.push(user);
          }
          pairs.push(pair as [string, string]);
        }
        const keyed = eventList.map((e, n) => ({ ...e, key: `r${run}e${n}` }));
        const results = await batch(
          sql,
          keyed.map((e) => ({ user: pairs[e.who][0], amount: e.amount, key: e.key })),
        );
        for (const [n, e] of keyed.entries()) {
          const single = await sql<{ balance: number }[]>`
            select credits.consume(${pairs[e.who][1]}, ${e.amount}, ${e.key}) as balance`
            .then((rows) => ({ status: "ok", balance: rows[0].balance as number | null }))
            .catch(() => ({ status: "insufficient_credits", balance: null }));
          assert.deepEqual([results[n].status, results[n].balance], [
            single.status,
            single.balance,
          ]);
        }
        for (const [batchUser, singleUser] of pairs) {
          const draws = async (user: string) =>
            (await sql<{ key: string; amounts: number[] }[]>`
              select l.idempotency_key as key,
                     (select array_agg((d ->> 'amount')::int order by o) from
                        jsonb_array_elements(l.draws) with ordinality as x (d, o)) as amounts
                from credits.ledger l where l.user_id = ${user} and l.kind = 'usage'
               order by l.id`).map((r) => [r.key, r.amounts]);
          assert.deepEqual(await draws(batchUser), await draws(singleUser));
          await assertBooksAgree(sql, batchUser);
        }
      }),
      { numRuns: 40 },
    );
  });
});

Deno.test("concurrent batches over the same users never overdraw and keep the books", async () => {
  await withDatabase(async ({ sql }) => {
    const users = await Promise.all(Array.from({ length: 10 }, () => userWith(sql, 50)));
    const calls = Array.from(
      { length: 8 },
      (_, c) =>
        batch(
          sql,
          users.flatMap((user, u) =>
            Array.from({ length: 5 }, (_, i) => ({ user, amount: 3, key: `c${c}u${u}i${i}` }))
          ),
        ),
    );
    const results = (await Promise.all(calls)).flat();
    const ok = results.filter((r) => r.status === "ok").length;
    // 50 credits per user buy 16 consumptions of 3.
    assert.equal(ok, 16 * users.length);
    for (const user of users) assert.equal(await assertBooksAgree(sql, user), 2);
  }, { max: 8 });
});
