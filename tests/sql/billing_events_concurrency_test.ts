// Two different payment events for one user at the same instant, each on its own connection:
// no deadlock, both applied, and the ledger, the balance row and the grants agree afterwards.
import assert from "node:assert/strict";
import { connect } from "../../db/client.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";
import { assertBooksAgree } from "../helpers/books.ts";
import {
  applyEvent,
  at,
  checkoutPaid,
  DAY,
  dispute,
  periodPaid,
  ref,
  refundTotal,
  subscriptionChanged,
  who,
} from "../helpers/neutral_events.ts";

const ROUNDS = 8;

const packageBought = (user: string, customerRef: string, payment: string) =>
  checkoutPaid({ user, customerRef, priceId: "price_pkg_standard", payment, amount: 1490 });

Deno.test("different events for one user at once: no deadlock, both applied", async (t) => {
  await withDatabase(async ({ sql, url }) => {
    // Two connections of their own, so the events really run side by side.
    const left = connect(url, { max: 1 });
    const right = connect(url, { max: 1 });
    try {
      await t.step("a renewal invoice and a subscription update", async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const user = await insertUser(sql);
          const cus = ref("cus");
          const sub = ref("sub");
          const first = { start: at(-DAY), end: at(29 * DAY) };
          const period = (p: { start: string; end: string }) =>
            periodPaid({
              customer: who(user, cus),
              sub,
              priceId: "price_pro_monthly",
              ...p,
              payment: ref("in"),
            });
          await applyEvent(sql, period(first));
          const next = { start: at(29 * DAY), end: at(59 * DAY) };
          const results = await Promise.all([
            applyEvent(left, period(next)),
            applyEvent(
              right,
              subscriptionChanged({
                customer: who(user, cus),
                sub,
                priceId: "price_pro_monthly",
                status: "active",
                ...next,
                occurredAt: at(29 * DAY + 1000),
              }),
            ),
          ]);
          assert.deepEqual(results, ["processed", "processed"]);
          assert.equal(await assertBooksAgree(sql, user), 2000);
          const [row] = await sql`select current_period_start from billing.subscriptions
                                   where provider_ref = ${sub}`;
          assert.equal(row.current_period_start.toISOString(), next.start);
        }
      });

      await t.step("a refund of one package while buying another", async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const user = await insertUser(sql);
          const cus = ref("cus");
          const bought = ref("pi");
          await applyEvent(sql, packageBought(user, cus, bought));
          await sql`select credits.consume(${user}, 20, ${ref("use")})`;
          const results = await Promise.all([
            applyEvent(left, refundTotal(bought, 1490, ref("ch"))),
            applyEvent(right, packageBought(user, cus, ref("pi"))),
          ]);
          assert.deepEqual(results, ["processed", "processed"]);
          // 200 bought, 20 spent (from the first package, which expires with the second),
          // the first's other 180 refunded, the second's 200 stay.
          assert.equal(await assertBooksAgree(sql, user), 200);
        }
      });

      await t.step("a dispute while the daily job runs", async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const user = await insertUser(sql);
          const bought = ref("pi");
          await applyEvent(
            sql,
            checkoutPaid({
              user,
              customerRef: ref("cus"),
              priceId: "price_lifetime",
              payment: bought,
              amount: 19900,
            }),
          );
          const [disputed, distributed] = await Promise.all([
            applyEvent(left, dispute(bought)),
            right`select credits.distribute_monthly(${at(32 * DAY)}::timestamptz) as n`,
          ]);
          assert.equal(disputed, "processed");
          assert.ok(Number(distributed[0].n) >= 0);
          // Whichever came first, no lifetime credit survives the dispute unless the slot was
          // made after it (then the purchase had already ended and no slot is made at all).
          const [row] = await sql<{ n: number }[]>`
            select coalesce(sum(remaining), 0)::int as n from credits.grants
             where user_id = ${user} and kind = 'lifetime_monthly'`;
          assert.equal(row.n, 0);
          await assertBooksAgree(sql, user);
        }
      });
    } finally {
      await left.end();
      await right.end();
    }
  });
});
