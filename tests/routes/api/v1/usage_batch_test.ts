// POST /api/v1/usage/batch: the envelope (1 to 1,000 events, else 400), each event on its own in
// the order sent: a bad event is "invalid" without failing the others, unknown features and
// reused keys are "invalid" too, and a repeated batch changes nothing.
import assert from "node:assert/strict";
import { assertError } from "../../../helpers/http.ts";
import { books, newCustomer, withV1 } from "./_v1.ts";

Deno.test("the envelope: no events, more than 1,000, or no list answer 400 and change nothing", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "batcher");
    const before = await books(v1, "batcher");
    const event = (i: number) => ({ customer: "batcher", amount: 1, idempotencyKey: `e${i}` });
    for (
      const body of [
        {},
        { events: [] },
        { events: "x" },
        { events: Array.from({ length: 1001 }, (_, i) => event(i)) },
      ]
    ) {
      assertError(await v1.call("POST", "/api/v1/usage/batch", body), 400, "invalid_request");
    }
    assertError(await v1.call("POST", "/api/v1/usage/batch", "{"), 400, "invalid_json");
    assert.deepEqual(await books(v1, "batcher"), before);
    const full = await v1.tally.usageBatch(
      Array.from({ length: 1000 }, (_, i) => event(i)),
    );
    assert.equal(full.response.status, 200);
    assert.equal(full.data?.results.length, 1000);
    assert.equal(full.data?.results.filter((r) => r.status === "ok").length, 100);
    assert.equal(full.data?.results[100].status, "insufficient_credits");
  });
});

Deno.test("each event on its own, in order; invalid ones do not fail the batch", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "b1");
    await newCustomer(v1, "b2");
    const events = [
      { customer: "b1", amount: 10, idempotencyKey: "k1" },
      { customer: "b1", amount: 0, idempotencyKey: "bad-zero" },
      { customer: "b2", feature: "image", quantity: 2, idempotencyKey: "k2" },
      { customer: "nobody", amount: 1, idempotencyKey: "k3" },
      { customer: "b1", amount: 1, feature: "chat", idempotencyKey: "bad-both" },
      { customer: "b1", feature: "teleport", idempotencyKey: "k4" },
      { customer: "b2", amount: 1000, idempotencyKey: "k5" },
      { customer: "b1", amount: 11, idempotencyKey: "k1" },
      "not an event",
      { customer: "b1", amount: 2 ** 53, idempotencyKey: "bad-big" },
      { customer: "bad id!", amount: 1, idempotencyKey: "bad-customer" },
      { customer: "b1", amount: 1 },
      { customer: "b2", amount: 5, idempotencyKey: "k6", description: "last" },
    ];
    const answer = await v1.call("POST", "/api/v1/usage/batch", { events });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    const results = (answer.json as {
      results: { idempotencyKey: string | null; status: string; balance?: number }[];
    }).results;
    assert.deepEqual(results.map((r) => [r.idempotencyKey, r.status]), [
      ["k1", "ok"],
      ["bad-zero", "invalid"],
      ["k2", "ok"],
      ["k3", "customer_not_found"],
      ["bad-both", "invalid"],
      ["k4", "invalid"],
      ["k5", "insufficient_credits"],
      ["k1", "invalid"],
      [null, "invalid"],
      ["bad-big", "invalid"],
      ["bad-customer", "invalid"],
      [null, "invalid"],
      ["k6", "ok"],
    ]);
    assert.equal(results[0].balance, 90);
    assert.equal(results[2].balance, 80);
    assert.equal(results[12].balance, 75);
    assert.equal((await books(v1, "b1")).balance, 90);
    assert.equal((await books(v1, "b2")).balance, 75);

    // The same batch again changes nothing and answers the same for the keys that worked.
    const again = await v1.call("POST", "/api/v1/usage/batch", { events });
    const second = (again.json as { results: { status: string; balance?: number }[] }).results;
    assert.deepEqual(second[0], results[0]);
    assert.deepEqual(second[12], results[12]);
    assert.equal((await books(v1, "b1")).balance, 90);
    assert.equal((await books(v1, "b2")).balance, 75);
  });
});
