// utils/usage_batch.ts: single consumptions coalesced into shared calls of api.usage_batch.
import assert from "node:assert/strict";
import { assertBooksAgree } from "../helpers/books.ts";
import { withDatabase } from "../helpers/db.ts";
import { consumeCoalesced, type UsageEvent } from "../../utils/usage_batch.ts";

Deno.test("coalesced consumptions share commits, and each request gets its own answer", async () => {
  await withDatabase(async ({ sql }) => {
    const customers = ["a", "b", "c", "d"];
    for (const id of customers) await sql`select api.put_customer(${id}, null, null)`;
    const [{ balance: start }] = await sql<{ balance: number }[]>`
      select (api.customer('a') ->> 'balance')::int as balance`;
    // Each customer is asked for more than it has in all: some requests must be refused.
    const events: UsageEvent[] = Array.from({ length: 400 }, (_, i) => ({
      customer: customers[i % 4],
      amount: 1 + (i % 3),
      idempotencyKey: `k${i}`,
    }));
    const answers = await Promise.all(events.map((event) => consumeCoalesced(sql, event)));
    answers.forEach((answer, i) => assert.equal(answer.idempotencyKey, events[i].idempotencyKey));
    for (const id of customers) {
      const mine = answers.filter((_, i) => events[i].customer === id);
      const spent = events.reduce(
        (sum, e, i) => sum + (e.customer === id && answers[i].status === "ok" ? e.amount! : 0),
        0,
      );
      const [{ user, balance }] = await sql<{ user: string; balance: number }[]>`
        select api.customer_user(${id}) as user, (api.customer(${id}) ->> 'balance')::int as balance`;
      assert.equal(balance, start - spent, `${id}: the ok answers are exactly what was spent`);
      assert.ok(mine.some((a) => a.status === "insufficient_credits"), `${id}: some refused`);
      // Each ok answer's balance is the balance right after its own consumption.
      const [{ n }] = await sql`
        select count(*)::int as n from credits.ledger
         where user_id = ${user} and kind = 'usage'
           and idempotency_key = any(${
        mine.filter((a) => a.status === "ok").map((a) => a.idempotencyKey)
      })`;
      assert.equal(n, mine.filter((a) => a.status === "ok").length);
      await assertBooksAgree(sql, user);
    }
    const [{ commits }] = await sql`
      select count(distinct xmin::text)::int as commits from credits.ledger where kind = 'usage'`;
    assert.ok(commits < 200, `400 requests were committed in ${commits} transactions`);
  });
});

Deno.test("one failing request in a coalesced group changes nothing for the others", async () => {
  await withDatabase(async ({ sql }) => {
    await sql`select api.put_customer('a', null, null)`;
    // A NUL cannot be stored in jsonb: the group's call fails, and each event is tried alone.
    const events: UsageEvent[] = Array.from({ length: 40 }, (_, i) => ({
      customer: "a",
      amount: 1,
      idempotencyKey: `k${i}`,
      description: i === 17 ? "bad\u0000text" : undefined,
    }));
    const outcomes = await Promise.allSettled(events.map((e) => consumeCoalesced(sql, e)));
    const failed = outcomes.flatMap((o, i) => (o.status === "rejected" ? [i] : []));
    assert.deepEqual(failed, [17]);
    assert.ok(
      outcomes.every((o, i) => i === 17 || (o.status === "fulfilled" && o.value.status === "ok")),
    );
    const [{ n }] = await sql`select count(*)::int as n from credits.ledger where kind = 'usage'`;
    assert.equal(n, 39);
  });
});
