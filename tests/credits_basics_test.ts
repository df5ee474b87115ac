import assert from "node:assert/strict";
import { insertUser, withDatabase } from "./helpers/db.ts";

Deno.test("grant then consume spends the soonest-expiring grant first", async () => {
  await withDatabase(async ({ sql }) => {
    const user = await insertUser(sql);
    await sql`select credits.grant(${user}, 10, 'bonus', 'k-never')`;
    await sql`select credits.grant(${user}, 10, 'bonus', 'k-soon', now() + interval '1 day')`;
    const [{ balance }] = await sql<{ balance: number }[]>`
      select credits.consume(${user}, 5, 'use-1') as balance`;
    assert.equal(balance, 15);
    const grants = await sql<{ source_key: string; remaining: number }[]>`
      select source_key, remaining from credits.grants where user_id = ${user} order by id`;
    assert.deepEqual(grants.map((g) => [g.source_key, g.remaining]), [["k-never", 10], [
      "k-soon",
      5,
    ]]);
  });
});
