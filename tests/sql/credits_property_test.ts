// A property test: random sequences of grants, consumptions, retries, expiry runs and clock moves,
// checked against a small model of the credit rules and against the books' own agreement.
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Sql, sqlState } from "../../db/client.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";
import { assertBooksAt, books } from "../helpers/books.ts";
import { assertSqlState } from "../helpers/assert.ts";

const MINUTE = 60_000;

type Command =
  | { kind: "grant"; amount: number; expiresInMinutes: number | null }
  | { kind: "consume"; amount: number }
  | { kind: "retry"; amount: number }
  | { kind: "expire" }
  | { kind: "advance"; minutes: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("grant" as const),
      amount: fc.integer({ min: 1, max: 50 }),
      // Some already expired when made, some never expiring.
      expiresInMinutes: fc.option(fc.integer({ min: -30, max: 600 }), { freq: 3 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("consume" as const),
      amount: fc.integer({ min: 1, max: 120 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("retry" as const),
      amount: fc.integer({ min: 1, max: 500 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("expire" as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      minutes: fc.integer({ min: 1, max: 240 }),
    }),
  },
);

type ModelGrant = { id: number; remaining: number; expiresAt: number | null };

/** The contract's rules in a few lines: what should be spendable, and what a consumption takes. */
class Model {
  grants: ModelGrant[] = [];
  /** Each successful consumption's key: its amount and the balance it answered. */
  results = new Map<string, { amount: number; balance: number }>();

  spendable(now: number): ModelGrant[] {
    return this.grants
      .filter((g) => g.remaining > 0 && (g.expiresAt === null || g.expiresAt > now))
      .sort((a, b) => (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity) || a.id - b.id);
  }

  balance(now: number): number {
    return this.spendable(now).reduce((sum, g) => sum + g.remaining, 0);
  }

  /** The draws a consumption makes, or null when the balance is short. */
  consume(amount: number, now: number): [number, number][] | null {
    if (this.balance(now) < amount) return null;
    const draws: [number, number][] = [];
    let left = amount;
    for (const g of this.spendable(now)) {
      if (left === 0) break;
      const take = Math.min(g.remaining, left);
      g.remaining -= take;
      left -= take;
      draws.push([g.id, take]);
    }
    return draws;
  }
}

async function spendableAt(sql: Sql, user: string, at: Date): Promise<number> {
  const [row] = await sql<{ b: number }[]>`select credits.balance(${user}, ${at}) as b`;
  return row.b;
}

async function runScenario(sql: Sql, start: number, commands: Command[]): Promise<void> {
  const user = await insertUser(sql);
  const model = new Model();
  let now = start;
  let step = 0;
  for (const cmd of commands) {
    step++;
    const at = new Date(now);
    const where = `step ${step} (${JSON.stringify(cmd)})`;
    switch (cmd.kind) {
      case "grant": {
        const expiresAt = cmd.expiresInMinutes === null
          ? null
          : now + cmd.expiresInMinutes * MINUTE;
        const [{ id }] = await sql<{ id: number }[]>`
          select credits.grant(${user}, ${cmd.amount}, 'bonus', ${`${user}:g${step}`},
                               ${expiresAt === null ? null : new Date(expiresAt)}) as id`;
        model.grants.push({ id, remaining: cmd.amount, expiresAt });
        break;
      }
      case "consume": {
        const key = `c${step}`;
        const expected = model.consume(cmd.amount, now);
        try {
          const [row] = await sql<{ balance: number }[]>`
            select credits.consume(${user}, ${cmd.amount}, ${key}, null, ${at}) as balance`;
          assert.notEqual(expected, null, `${where}: consumption beyond the balance succeeded`);
          assert.equal(row.balance, model.balance(now), where);
          model.results.set(key, { amount: cmd.amount, balance: row.balance });
        } catch (error) {
          if (error instanceof assert.AssertionError) throw error;
          assert.equal(sqlState(error), "CR001", `${where}: ${error}`);
          assert.equal(expected, null, `${where}: refused although the balance sufficed`);
        }
        if (expected !== null) {
          const [{ draws }] = await sql<{ draws: { grant: number; amount: number }[] }[]>`
            select draws from credits.ledger where user_id = ${user} and idempotency_key = ${key}`;
          assert.deepEqual(draws.map((d) => [d.grant, d.amount]), expected, `${where}: draws`);
        }
        break;
      }
      case "retry": {
        const first = [...model.results.entries()][step % Math.max(1, model.results.size)];
        if (!first) break;
        const [key, { amount, balance }] = first;
        const before = await books(sql, user);
        // The same amount answers the first result; another amount is refused with CR002.
        const [row] = await sql<{ balance: number }[]>`
          select credits.consume(${user}, ${amount}, ${key}, null, ${at}) as balance`;
        assert.equal(row.balance, balance, `${where}: a retry returns the first result`);
        if (cmd.amount !== amount) {
          await assertSqlState(
            sql`select credits.consume(${user}, ${cmd.amount}, ${key}, null, ${at})`,
            "CR002",
            `${where}: a retry with another amount is refused`,
          );
        }
        assert.deepEqual(await books(sql, user), before, `${where}: a retry changes nothing`);
        break;
      }
      case "expire": {
        await sql`select credits.expire_due(${at})`;
        const value = await books(sql, user);
        const balance = model.balance(now);
        assertBooksAt(value, balance, `${where}: after expire_due the books equal the balance`);
        break;
      }
      case "advance":
        now += cmd.minutes * MINUTE;
        break;
    }
    // Always: the spendable balance follows the rules and is never negative; the stored balance,
    // the ledger and the grants not yet expired by the ledger agree with each other.
    const spendable = await spendableAt(sql, user, new Date(now));
    assert.equal(spendable, model.balance(now), `${where}: credits.balance`);
    assert.ok(spendable >= 0);
    const value = await books(sql, user);
    assert.equal(value.stored, value.ledgerSum, `${where}: stored = ledger sum`);
    assert.equal(value.stored, value.unexpiredRemaining, `${where}: stored = grants`);
    assert.equal(value.stored, value.lastAfter, `${where}: stored = last balance-after`);
    assert.ok(value.stored >= spendable, `${where}: unrecorded expiries only lower the balance`);
  }
}

Deno.test("random grants, consumptions, expiries and clock moves keep the books right", async () => {
  await withDatabase(async ({ sql }) => {
    const [{ start }] = await sql<{ start: Date }[]>`select now() + interval '1 hour' as start`;
    // The clock starts ahead of the real one and only moves forward, so the real clock (which
    // grants use to record due expiries) never expires anything the model still counts.
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 5, maxLength: 40 }), async (commands) => {
        await runScenario(sql, start.getTime(), commands);
      }),
      { numRuns: 100 },
    );
  }, { max: 2 });
});
