// The closed sets of values (grant and ledger kinds, providers, payment kinds, inbox statuses) are
// domains (migration 0006): a row written around the stored procedures with a value outside the
// set is still refused by the table, with SQLSTATE 23514 as a CHECK constraint would.
import assert from "node:assert/strict";
import { assertSqlState } from "../../helpers/assert.ts";
import { insertUser, withDatabase } from "../../helpers/db.ts";

Deno.test("tables refuse kinds, providers and statuses outside their sets", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    const refused = (statement: Promise<unknown>) => assertSqlState(statement, "23514");
    await refused(sql`
      insert into credits.grants (user_id, kind, amount, remaining, source_key)
      values (${user}, 'usage', 1, 1, 'not-a-grant-kind')`);
    await refused(sql`
      insert into credits.ledger (user_id, kind, amount, balance_after)
      values (${user}, 'gift', 1, 1)`);
    await refused(sql`
      insert into billing.payments (user_id, provider, provider_ref, kind, amount, currency, paid_at)
      values (${user}, 'paypal', 'pp_1', 'package', 1, 'usd', now())`);
    await refused(sql`
      insert into billing.payments (user_id, provider, provider_ref, kind, amount, currency, paid_at)
      values (${user}, 'stripe', 'in_1', 'donation', 1, 'usd', now())`);
    await refused(sql`
      insert into billing.webhook_events (provider, event_id, type, event, status, received_at)
      values ('stripe', 'evt_1', 'x', '{}', 'pending', now())`);
    await refused(sql`
      insert into billing.subscriptions (user_id, provider, provider_ref, plan_id, price_id,
                                         interval, status, current_period_start,
                                         current_period_end)
      values (${user}, 'stripe', 'sub_1', 'pro', 'price_pro_monthly', 'week', 'active', now(),
              now() + interval '7 days')`);

    // Values inside the sets pass, and read back as plain text.
    const [row] = await sql<{ kind: string }[]>`
      insert into credits.grants (user_id, kind, amount, remaining, source_key)
      values (${user}, 'bonus', 1, 1, 'a-bonus') returning kind`;
    assert.equal(row.kind, "bonus");
  });
});
