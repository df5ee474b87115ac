// A grant whose source key a running batch has inserted but not yet committed must wait for the
// batch before it locks the user's balance row; otherwise the batch's balance update and the
// grant wait on each other (a deadlock, 40P01). This replays the batch's steps by hand.
import assert from "node:assert/strict";
import { connect } from "../../db/client.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";

Deno.test("a grant racing a batch on the same source key does not deadlock", async () => {
  await withDatabase(async ({ sql, url }) => {
    const user = await insertUser(sql);
    const key = `subscription_monthly:1:2026-11-01T00:00:00:0`;
    const batch = connect(url, { max: 1 });
    const webhook = connect(url, { max: 1 });
    try {
      const batchDone = batch.begin(async (tx) => {
        // What distribute_monthly does, in its order: batch lock, insert the grant, then
        // (after a pause that lets the webhook's grant start) update the balance row.
        await tx`select pg_advisory_xact_lock(credits.batch_lock_key())`;
        await tx`insert into credits.grants (user_id, kind, amount, remaining, source_key)
                 values (${user}, 'subscription_monthly', 100, 100, ${key})`;
        await new Promise((resolve) => setTimeout(resolve, 300));
        await tx`update credits.balances set balance = balance + 100 where user_id = ${user}`;
        await tx`insert into credits.ledger (user_id, kind, amount, balance_after)
                 values (${user}, 'subscription_monthly', 100, 100)`;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const [granted] = await webhook<{ id: number }[]>`
        select credits.grant(${user}, 100, 'subscription_monthly', ${key}) as id`;
      await batchDone;
      const [grant] = await sql<{ id: number }[]>`
        select id from credits.grants where source_key = ${key}`;
      assert.equal(granted.id, grant.id, "the grant returns the batch's grant");
      const [{ balance }] = await sql<{ balance: number }[]>`
        select credits.balance(${user}) as balance`;
      assert.equal(balance, 100, "granted once");
    } finally {
      await batch.end();
      await webhook.end();
    }
  });
});
