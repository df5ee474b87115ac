// Spending over HTTP: the amount rules of every spending route (400 and nothing changed), consume
// (200, replay, 402, 409, unknown_feature), reservations (201, 200 replay, 402), settle and release
// (200, replays, 409 reservation_closed, 422 exceeds_reservation, 404) and refunds (200, replay,
// 422 exceeds_usage, 404). The rules themselves are tested in tests/sql/; this is the mapping.
import assert from "node:assert/strict";
import { assertError } from "../../../helpers/http.ts";
import { BAD_AMOUNTS, bodyWith, books, newCustomer, withV1 } from "./_v1.ts";

Deno.test("the amount rules: each bad amount answers 400 invalid_request and changes nothing", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "rules");
    const before = await books(v1, "rules");
    const routes: [string, Record<string, unknown>][] = [
      ["/api/v1/customers/rules/consume", { idempotencyKey: "k" }],
      ["/api/v1/customers/rules/reservations", { idempotencyKey: "k" }],
    ];
    for (const [path, others] of routes) {
      for (const [label, members] of BAD_AMOUNTS) {
        const answer = await v1.call("POST", path, bodyWith(members, others));
        assert.equal(answer.status, 400, `${path} ${label}: ${JSON.stringify(answer.json)}`);
        assertError(answer, 400, "invalid_request");
      }
    }
    for (const body of ["not json", "[1]", '"text"', '{"amount": 1, "idempotencyKey": ""}']) {
      const answer = await v1.call("POST", "/api/v1/customers/rules/consume", body);
      assert.equal(answer.status, 400, body);
      assert.ok(
        ["invalid_request", "invalid_json"].includes((answer.json as { error: string }).error),
      );
    }
    const nul = await v1.call(
      "POST",
      "/api/v1/customers/rules/consume",
      { amount: 1, idempotencyKey: "k\u0000" },
    );
    assertError(nul, 400, "invalid_request");
    assert.deepEqual(await books(v1, "rules"), before);
    // The same key then works: the refusals recorded nothing.
    const ok = await v1.tally.consume("rules", { amount: 1, idempotencyKey: "k" });
    assert.equal(ok.response.status, 200);
  });
});

Deno.test("consume: 200 {balance, usageId}, the same key replays, 402, 409 and unknown_feature", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "spender");
    const first = await v1.tally.consume("spender", { amount: 30, idempotencyKey: "c1" });
    assert.equal(first.response.status, 200);
    assert.deepEqual(Object.keys(first.data!).sort(), ["balance", "usageId"]);
    assert.equal(first.data?.balance, 70);
    const replay = await v1.tally.consume("spender", { amount: 30, idempotencyKey: "c1" });
    assert.equal(replay.response.status, 200);
    assert.deepEqual(replay.data, first.data);
    assert.equal((await books(v1, "spender")).balance, 70);

    const reused = await v1.call("POST", "/api/v1/customers/spender/consume", {
      amount: 31,
      idempotencyKey: "c1",
    });
    assertError(reused, 409, "idempotency_key_reused");

    const short = await v1.call("POST", "/api/v1/customers/spender/consume", {
      amount: 71,
      idempotencyKey: "c2",
    });
    assertError(short, 402, "insufficient_credits");

    const byFeature = await v1.tally.consume("spender", { feature: "image", quantity: 3 });
    assert.equal(byFeature.response.status, 200);
    assert.equal(byFeature.data?.balance, 40, "3 images of 10 credits");
    const one = await v1.tally.consume("spender", { feature: "chat" });
    assert.equal(one.data?.balance, 39, "quantity defaults to 1");

    const before = await books(v1, "spender");
    const unknown = await v1.call("POST", "/api/v1/customers/spender/consume", {
      feature: "teleport",
      idempotencyKey: "c3",
    });
    assertError(unknown, 400, "unknown_feature");
    assert.deepEqual(await books(v1, "spender"), before);
  });
});

Deno.test("reservations: 201, the same key 200, 402 when short; settle and release", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "holder");
    const held = await v1.tally.reserve("holder", {
      amount: 40,
      idempotencyKey: "r1",
      ttlSeconds: 60,
    });
    assert.equal(held.response.status, 201);
    const reservation = held.data!;
    assert.deepEqual(Object.keys(reservation).sort(), [
      "amount",
      "balance",
      "expiresAt",
      "id",
      "reserved",
    ]);
    assert.equal(reservation.amount, 40);
    assert.equal(reservation.balance, 60, "held credits are not spendable");
    assert.equal(reservation.reserved, 40);
    const expires = Date.parse(reservation.expiresAt) - Date.now();
    assert.ok(expires > 50_000 && expires <= 61_000, `expires in ${expires} ms`);

    const replay = await v1.tally.reserve("holder", { amount: 40, idempotencyKey: "r1" });
    assert.equal(replay.response.status, 200);
    assert.equal(replay.data?.id, reservation.id);

    assertError(
      await v1.call("POST", "/api/v1/customers/holder/reservations", {
        amount: 61,
        idempotencyKey: "r2",
      }),
      402,
      "insufficient_credits",
    );
    for (const ttlSeconds of [0, 86_401, 1.5, "60"]) {
      assertError(
        await v1.call("POST", "/api/v1/customers/holder/reservations", {
          amount: 1,
          idempotencyKey: "r3",
          ttlSeconds,
        }),
        400,
        "invalid_request",
      );
    }
    const customer = await v1.tally.getCustomer("holder");
    assert.equal(customer.data?.reserved, 40);
    assert.equal(customer.data?.balance, 60);

    // Settle: more than held is 422, then 25 of 40; the same again answers the same.
    assertError(
      await v1.call("POST", `/api/v1/reservations/${reservation.id}/settle`, { amount: 41 }),
      422,
      "exceeds_reservation",
    );
    const settled = await v1.tally.settle(reservation.id, { amount: 25, description: "a call" });
    assert.equal(settled.response.status, 200);
    assert.equal(settled.data?.balance, 75);
    assert.equal(settled.data?.settled, 25);
    const again = await v1.tally.settle(reservation.id, { amount: 25 });
    assert.equal(again.response.status, 200);
    assert.deepEqual(again.data, settled.data);
    assertError(
      await v1.call("POST", `/api/v1/reservations/${reservation.id}/settle`, { amount: 24 }),
      409,
      "reservation_closed",
    );
    assertError(
      await v1.call("POST", `/api/v1/reservations/${reservation.id}/release`),
      409,
      "reservation_closed",
    );
    assert.equal((await books(v1, "holder")).balance, 75);

    // Release: gives everything back, repeatable.
    const second = await v1.tally.reserve("holder", { amount: 10 });
    assert.equal(second.response.status, 201);
    const released = await v1.tally.release(second.data!.id);
    assert.equal(released.response.status, 200);
    assert.deepEqual(released.data, { balance: 75 });
    assert.deepEqual((await v1.tally.release(second.data!.id)).data, { balance: 75 });

    for (
      const [method, path, body] of [
        ["POST", "/api/v1/reservations/999999/settle", { amount: 1 }],
        ["POST", "/api/v1/reservations/999999/release", undefined],
      ] as const
    ) {
      assertError(await v1.call(method, path, body), 404, "not_found");
    }
    for (const id of ["0", "-1", "abc", "1.5", "99999999999999999"]) {
      assertError(
        await v1.call("POST", `/api/v1/reservations/${id}/release`),
        400,
        "invalid_request",
      );
    }
    for (const amount of [-1, 1.5, "1", 2 ** 53]) {
      assertError(
        await v1.call("POST", `/api/v1/reservations/${second.data!.id}/settle`, { amount }),
        400,
        "invalid_request",
      );
    }
  });
});

Deno.test("refunds: 200 {refunded, balance}, the same key replays, 422 exceeds_usage, 404", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "refunded");
    const spent = await v1.tally.consume("refunded", { amount: 30 });
    const usageId = spent.data!.usageId;
    const part = await v1.tally.refund(usageId, { amount: 10, idempotencyKey: "f1" });
    assert.equal(part.response.status, 200);
    assert.deepEqual(part.data, { refunded: 10, balance: 80 });
    const replay = await v1.tally.refund(usageId, { amount: 10, idempotencyKey: "f1" });
    assert.deepEqual(replay.data, part.data);
    assertError(
      await v1.call("POST", `/api/v1/usage/${usageId}/refund`, {
        amount: 21,
        idempotencyKey: "f2",
      }),
      422,
      "exceeds_usage",
    );
    const rest = await v1.tally.refund(usageId, { idempotencyKey: "f3" });
    assert.deepEqual(rest.data, { refunded: 20, balance: 100 }, "default: all that is left");
    assertError(
      await v1.call("POST", "/api/v1/usage/999999/refund", { idempotencyKey: "f4" }),
      404,
      "not_found",
    );
    for (const body of [{ amount: 0, idempotencyKey: "f5" }, { amount: 1 }, { amount: -1 }]) {
      assertError(
        await v1.call("POST", `/api/v1/usage/${usageId}/refund`, body),
        400,
        "invalid_request",
      );
    }
  });
});

Deno.test("parallel consumes over real connections: each its own answer, never below zero", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "crowd");
    // 30 requests of 7 at once against 100 credits: 14 fit, 16 are refused with 402.
    const answers = await Promise.all(
      Array.from(
        { length: 30 },
        (_, i) => v1.tally.consume("crowd", { amount: 7, idempotencyKey: `p${i}` }),
      ),
    );
    const statuses = answers.map((a) => a.response.status);
    assert.equal(statuses.filter((s) => s === 200).length, 14);
    assert.equal(statuses.filter((s) => s === 402).length, 16);
    const usageIds = new Set(answers.flatMap((a) => (a.data ? [a.data.usageId] : [])));
    assert.equal(usageIds.size, 14, "each consumption has its own usage");
    assert.equal((await books(v1, "crowd")).balance, 2);

    // The same key sent 10 times at once spends once, and every answer is the same.
    await v1.tally.grant("crowd", { amount: 98, sourceKey: "refill" });
    const same = await Promise.all(
      Array.from(
        { length: 10 },
        () => v1.tally.consume("crowd", { amount: 9, idempotencyKey: "once" }),
      ),
    );
    assert.deepEqual(new Set(same.map((a) => a.response.status)), new Set([200]));
    assert.equal(new Set(same.map((a) => JSON.stringify(a.data))).size, 1);
    assert.equal((await books(v1, "crowd")).balance, 91);
  });
});
