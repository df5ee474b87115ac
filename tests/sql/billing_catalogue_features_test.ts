// plans.json's features and lowBalanceCredits as billing.load_plans stores them
// (sql/billing_catalogue.sql), and credits.feature_cost over them (sql/billing_features.sql).
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { withDatabase } from "../helpers/db.ts";
import { assertSqlState } from "../helpers/assert.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
type PlansDoc = Record<string, unknown> & {
  features?: { id: string; name: string; credits: number }[];
  lowBalanceCredits?: number;
};
const repoPlans = (): PlansDoc => JSON.parse(Deno.readTextFileSync(`${ROOT}plans.json`));

async function load(sql: Sql, doc: PlansDoc): Promise<void> {
  await sql`select billing.load_plans(${sql.json(doc as never)}::jsonb)`;
}

async function features(sql: Sql): Promise<string[]> {
  const rows = await sql<{ line: string }[]>`
    select id || ' ' || name || ' ' || credits || ' ' || position || ' '
           || case when active then 'active' else 'inactive' end as line
      from billing.features order by id`;
  return rows.map((row) => row.line);
}

async function cost(sql: Sql, feature: string, quantity: bigint | number | null) {
  const [{ cost }] = await sql<{ cost: string }[]>`
    select credits.feature_cost(${feature}, ${
    quantity === null ? null : String(quantity)
  }::bigint)::text
      as cost`;
  return BigInt(cost);
}

Deno.test("the repository's plans file loads its features and lowBalanceCredits", async () => {
  await withDatabase(async ({ sql }) => {
    // The template database was loaded from plans.json by tests/run.ts.
    assert.deepEqual(await features(sql), [
      "chat Chat message 1 1 active",
      "image Image generation 10 2 active",
    ]);
    const [{ low }] = await sql<{ low: number }[]>`
      select low_balance_credits as low from billing.settings`;
    assert.equal(low, 20);
    assert.equal(await cost(sql, "image", 3), 30n);
    assert.equal(await cost(sql, "chat", 1), 1n);
  });
});

Deno.test("a feature the file no longer lists becomes inactive and costs CR006; one back is active", async () => {
  await withDatabase(async ({ sql }) => {
    const doc = repoPlans();
    doc.features = [
      { id: "video", name: "Video", credits: 100 },
      { id: "chat", name: "Chat, dearer", credits: 2 },
    ];
    delete doc.lowBalanceCredits;
    await load(sql, doc);
    assert.deepEqual(await features(sql), [
      "chat Chat, dearer 2 2 active",
      "image Image generation 10 2 inactive",
      "video Video 100 1 active",
    ]);
    const [{ low }] = await sql<{ low: number | null }[]>`
      select low_balance_credits as low from billing.settings`;
    assert.equal(low, null, "an absent lowBalanceCredits clears the threshold");
    await assertSqlState(cost(sql, "image", 1), "CR006", "retired feature");
    await assertSqlState(cost(sql, "nope", 1), "CR006", "unknown feature");
    assert.equal(await cost(sql, "chat", 5), 10n);

    delete doc.features;
    await load(sql, doc);
    assert.ok((await features(sql)).every((line) => line.endsWith(" inactive")));
    await load(sql, repoPlans());
    assert.deepEqual(await features(sql), [
      "chat Chat message 1 1 active",
      "image Image generation 10 2 active",
      "video Video 100 1 inactive",
    ]);
  });
});

Deno.test("feature_cost refuses a non-positive quantity and a product beyond 2^53", async () => {
  await withDatabase(async ({ sql }) => {
    for (const quantity of [0, -1, null]) {
      await assertSqlState(cost(sql, "image", quantity), "22023", String(quantity));
    }
    // 10 × 2^53/10 rounded: the largest quantity whose cost stays within 2^53.
    const limit = 2n ** 53n;
    const largest = limit / 10n;
    assert.equal(await cost(sql, "image", largest), largest * 10n);
    await assertSqlState(cost(sql, "image", largest + 1n), "22023", "just past 2^53");
    await assertSqlState(cost(sql, "image", 2n ** 62n), "22023", "a bigint product's overflow");
    assert.equal(await cost(sql, "chat", limit), limit, "2^53 itself is allowed");
    await assertSqlState(cost(sql, "chat", limit + 1n), "22023");
  });
});
