// A property test of the server-to-server rules: random grants, consumptions (one by one and in
// batches), reservations, settlements, releases, usage refunds, expiry runs and clock moves,
// checked step by step against a small model, then the point-in-time balance checked at every
// step's instant and between steps.
import assert from "node:assert/strict";
import fc from "fast-check";
import { type Sql, sqlState } from "../../db/client.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";
import { assertHoldsAgree, books } from "../helpers/books.ts";

const MINUTE = 60_000;

type Command =
  | { kind: "grant"; amount: number; expiresInMinutes: number | null }
  | { kind: "consume"; amounts: number[] }
  | { kind: "reserve"; amount: number; ttlMinutes: number }
  | { kind: "settle"; pick: number; amount: number }
  | { kind: "release"; pick: number }
  | { kind: "refund"; pick: number; amount: number | null }
  | { kind: "expire" }
  | { kind: "advance"; minutes: number };

const grant = fc.record({
  kind: fc.constant("grant" as const),
  amount: fc.integer({ min: 1, max: 60 }),
  expiresInMinutes: fc.option(fc.integer({ min: 1, max: 600 }), { freq: 3 }),
});

// Grants come first, mostly: the point-in-time check compares the instants after the last one.
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 1, arbitrary: grant },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("consume" as const),
      amounts: fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("reserve" as const),
      amount: fc.integer({ min: 1, max: 80 }),
      ttlMinutes: fc.integer({ min: 1, max: 300 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("settle" as const),
      pick: fc.nat(),
      amount: fc.integer({ min: 0, max: 90 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("refund" as const),
      pick: fc.nat(),
      amount: fc.option(fc.integer({ min: 1, max: 40 }), { freq: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("expire" as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      minutes: fc.integer({ min: 1, max: 200 }),
    }),
  },
);

type Grant = { id: number; remaining: number; expiresAt: number | null };
type Hold = { grant: number; amount: number };
type Reservation = {
  id: number;
  amount: number;
  holds: Hold[];
  expiresAt: number;
  status: "open" | "settled" | "released" | "expired";
  settled?: number;
};
type Usage = { id: number; draws: Hold[]; refunded: Map<number, number> };

/** The contract's rules for one user, applied eagerly at each step's instant. */
class Model {
  grants: Grant[] = [];
  reservations: Reservation[] = [];
  usages: Usage[] = [];

  live(g: Grant, at: number): boolean {
    return g.expiresAt === null || g.expiresAt > at;
  }

  grant(id: number): Grant {
    return this.grants.find((g) => g.id === id)!;
  }

  spendable(at: number): Grant[] {
    return this.grants
      .filter((g) => g.remaining > 0 && this.live(g, at))
      .sort((a, b) => (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity) || a.id - b.id);
  }

  /** Reservations past their expiresAt give back what their live grants held, at that instant. */
  releaseDue(now: number): void {
    for (const r of this.reservations) {
      if (r.status !== "open" || r.expiresAt > now) continue;
      for (const h of r.holds) {
        const g = this.grant(h.grant);
        if (this.live(g, r.expiresAt)) g.remaining += h.amount;
      }
      r.status = "expired";
    }
  }

  heldOn(at: number, due: boolean): number {
    return this.reservations
      .filter((r) => r.status === "open" && (due ? r.expiresAt <= at : r.expiresAt > at))
      .flatMap((r) => r.holds)
      .filter((h) => this.live(this.grant(h.grant), at))
      .reduce((sum, h) => sum + h.amount, 0);
  }

  balance(at: number): number {
    return this.spendable(at).reduce((sum, g) => sum + g.remaining, 0) + this.heldOn(at, true);
  }

  reserved(at: number): number {
    return this.heldOn(at, false);
  }

  /** Takes amount in spending order; null when short. */
  take(amount: number, now: number): Hold[] | null {
    this.releaseDue(now);
    if (this.balance(now) < amount) return null;
    const draws: Hold[] = [];
    let left = amount;
    for (const g of this.spendable(now)) {
      if (left === 0) break;
      const take = Math.min(g.remaining, left);
      g.remaining -= take;
      left -= take;
      draws.push({ grant: g.id, amount: take });
    }
    return draws;
  }

  clone(): Model {
    const copy = new Model();
    copy.grants = this.grants.map((g) => ({ ...g }));
    copy.reservations = this.reservations.map((r) => ({
      ...r,
      holds: r.holds.map((h) => ({ ...h })),
    }));
    return copy;
  }
}

type Snapshot = { at: number; until: number; model: Model };

async function expectState(run: Promise<unknown>, state: string | null, where: string) {
  try {
    await run;
    assert.equal(state, null, `${where}: succeeded, expected ${state}`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    assert.equal(sqlState(error), state, `${where}: ${error}`);
  }
}

async function runScenario(sql: Sql, start: number, commands: Command[]): Promise<void> {
  const user = await insertUser(sql);
  const model = new Model();
  const snapshots: Snapshot[] = [];
  let now = start;
  let step = 0;
  for (const cmd of commands) {
    step++;
    const at = new Date(now);
    const where = `step ${step} ${JSON.stringify(cmd)}`;
    switch (cmd.kind) {
      case "grant": {
        const expiresAt = cmd.expiresInMinutes === null
          ? null
          : now + cmd.expiresInMinutes * MINUTE;
        const [{ id }] = await sql<{ id: number }[]>`
          select credits.grant(${user}, ${cmd.amount}, 'bonus', ${`${user}:g${step}`},
                               ${expiresAt === null ? null : new Date(expiresAt)}) as id`;
        model.grants.push({ id, remaining: cmd.amount, expiresAt });
        // Grants count from the real instant they were made (before the model's clock), so the
        // instants before this one can no longer be compared.
        snapshots.length = 0;
        break;
      }
      case "consume": {
        const events = cmd.amounts.map((amount, i) => ({ user, amount, key: `c${step}.${i}` }));
        const rows = await sql<
          { status: string; balance: number | null; usage_id: number | null }[]
        >`
          select status, balance, usage_id from credits.consume_batch(${sql.json(events)}, ${at})`;
        for (const [i, amount] of cmd.amounts.entries()) {
          const draws = model.take(amount, now);
          assert.equal(rows[i].status, draws ? "ok" : "insufficient_credits", `${where} #${i}`);
          if (!draws) continue;
          assert.equal(rows[i].balance, model.balance(now), `${where} #${i}: balance`);
          const [entry] = await sql<{ draws: Hold[] }[]>`
            select draws from credits.ledger where user_id = ${user} and id = ${rows[i].usage_id}`;
          assert.deepEqual(entry.draws, draws, `${where} #${i}: draws`);
          model.usages.push({ id: rows[i].usage_id!, draws, refunded: new Map() });
        }
        break;
      }
      case "reserve": {
        const key = `r${step}`;
        const draws = model.take(cmd.amount, now);
        try {
          const [row] = await sql<{ reservation_id: number }[]>`
            select reservation_id from credits.reserve(${user}, ${cmd.amount}, ${key},
                                                      ${cmd.ttlMinutes * 60}, null, ${at})`;
          assert.ok(draws, `${where}: reserved beyond the balance`);
          model.reservations.push({
            id: row.reservation_id,
            amount: cmd.amount,
            holds: draws,
            expiresAt: now + cmd.ttlMinutes * MINUTE,
            status: "open",
          });
        } catch (error) {
          if (error instanceof assert.AssertionError) throw error;
          assert.equal(sqlState(error), "CR001", `${where}: ${error}`);
          assert.equal(draws, null, `${where}: refused although the balance sufficed`);
        }
        break;
      }
      case "settle":
      case "release": {
        const r = model.reservations[cmd.pick % Math.max(1, model.reservations.length)];
        if (!r) break;
        model.releaseDue(now);
        const amount = cmd.kind === "settle" ? cmd.amount : null;
        const liveHolds = r.holds.filter((h) => model.live(model.grant(h.grant), now));
        const live = liveHolds.reduce((sum, h) => sum + h.amount, 0);
        let expected: string | null = null;
        if (r.status !== "open") {
          const repeat = amount === null
            ? r.status === "released" || r.status === "expired"
            : r.status === "settled" && r.settled === amount;
          expected = repeat ? null : "CR004";
        } else if (amount !== null && amount > live) expected = "CR003";
        const call = amount === null
          ? sql`select credits.release(${r.id}, ${at})`
          : sql`select * from credits.settle(${r.id}, ${amount}, null, ${at})`;
        const wasOpen = r.status === "open";
        await expectState(call, expected, where);
        if (expected !== null || !wasOpen) break;
        let left = amount ?? 0;
        const draws: Hold[] = [];
        for (const h of liveHolds) {
          const take = Math.min(h.amount, left);
          left -= take;
          model.grant(h.grant).remaining += h.amount - take;
          if (take > 0) draws.push({ grant: h.grant, amount: take });
        }
        r.status = amount === null ? "released" : "settled";
        r.settled = amount ?? undefined;
        if (amount) {
          const [{ usage_id }] = await sql<{ usage_id: number }[]>`
            select usage_id from credits.reservations where user_id = ${user} and id = ${r.id}`;
          model.usages.push({ id: usage_id, draws, refunded: new Map() });
        }
        break;
      }
      case "refund": {
        const u = model.usages[cmd.pick % Math.max(1, model.usages.length)];
        if (!u) break;
        model.releaseDue(now);
        const open = u.draws
          .filter((d) => model.live(model.grant(d.grant), now))
          .map((d) => ({ grant: d.grant, open: d.amount - (u.refunded.get(d.grant) ?? 0) }))
          .filter((d) => d.open > 0);
        const left = open.reduce((sum, d) => sum + d.open, 0);
        const amount = cmd.amount ?? left;
        const expected = amount > left ? "CR005" : null;
        const [row] = expected ? [] : await sql<{ refunded: number; balance: number }[]>`
          select refunded, balance from credits.refund_usage(${u.id}, ${cmd.amount}, ${`f${step}`},
                                                             null, ${at})`;
        if (expected) {
          await expectState(
            sql`select credits.refund_usage(${u.id}, ${cmd.amount}, ${`f${step}`}, null, ${at})`,
            expected,
            where,
          );
          break;
        }
        let give = amount;
        for (const d of open.reverse()) {
          const back = Math.min(d.open, give);
          give -= back;
          model.grant(d.grant).remaining += back;
          u.refunded.set(d.grant, (u.refunded.get(d.grant) ?? 0) + back);
        }
        assert.equal(row.refunded, amount, `${where}: refunded`);
        assert.equal(row.balance, model.balance(now), `${where}: balance after the refund`);
        break;
      }
      case "expire":
        await sql`select credits.expire_due(${at})`;
        model.releaseDue(now);
        break;
      case "advance":
        now += cmd.minutes * MINUTE;
        break;
    }
    const [row] = await sql<{ balance: number; reserved: number }[]>`
      select credits.balance(${user}, ${new Date(now)}) as balance,
             credits.reserved(${user}, ${new Date(now)}) as reserved`;
    assert.equal(row.balance, model.balance(now), `${where}: credits.balance`);
    assert.equal(row.reserved, model.reserved(now), `${where}: credits.reserved`);
    const value = await books(sql, user);
    assert.equal(value.stored, value.ledgerSum, `${where}: stored = ledger sum`);
    assert.equal(value.stored, value.unexpiredRemaining, `${where}: stored = grants`);
    assert.equal(value.stored, value.lastAfter, `${where}: stored = last balance-after`);
    await assertHoldsAgree(sql, user);
    const previous = snapshots.at(-1);
    if (previous && previous.until === Infinity) previous.until = now;
    if (!previous || previous.at !== now) {
      snapshots.push({ at: now, until: Infinity, model: model.clone() });
    } else {
      previous.model = model.clone();
      previous.until = Infinity;
    }
  }
  // At each step's instant (after the last grant) and halfway to the next.
  const later = new Date(now + 1);
  for (const s of snapshots) {
    const instants = [s.at, s.until === Infinity ? s.at + MINUTE : (s.at + s.until) / 2];
    for (const t of instants) {
      const [row] = await sql<{ balance: number; reserved: number }[]>`
        select balance, reserved from credits.balance_at(${user}, ${new Date(t)}, ${later})`;
      assert.deepEqual(
        { balance: row.balance, reserved: row.reserved },
        { balance: s.model.balance(t), reserved: s.model.reserved(t) },
        `balance_at ${new Date(t).toISOString()} (step at ${new Date(s.at).toISOString()})`,
      );
    }
  }
}

Deno.test("random reservations, settlements, releases, refunds, batches and clock moves keep the books right", async () => {
  await withDatabase(async ({ sql }) => {
    const [{ start }] = await sql<{ start: Date }[]>`select now() + interval '1 hour' as start`;
    await fc.assert(
      fc.asyncProperty(
        fc.array(grant, { minLength: 1, maxLength: 5 }),
        fc.array(command, { minLength: 5, maxLength: 40 }),
        async (grants, commands) => {
          await runScenario(sql, start.getTime(), [...grants, ...commands]);
        },
      ),
      { numRuns: 80 },
    );
  }, { max: 2 });
});
