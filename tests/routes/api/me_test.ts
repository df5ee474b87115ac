// docs/api.md#routes, the signed-in user: /api/me, credits, transactions, consume, daily sign-in;
// 401 without a session; one user never reaching another's data; bad input changing nothing.
import assert from "node:assert/strict";
import {
  assertError,
  ledgerState,
  send,
  signedUp,
  withApp,
  withServer,
} from "../../helpers/http.ts";

type Me = {
  id: string;
  email: string;
  plan: { id: string; kind: string; status: string; renewsAt: string | null };
  balance: number;
};
type Grant = {
  id: number;
  kind: string;
  amount: number;
  remaining: number;
  expiresAt: string | null;
  createdAt: string;
};
type Credits = {
  balance: number;
  expiringSoon: { amount: number; before: string };
  grants: Grant[];
};
type Item = {
  id: number;
  kind: string;
  amount: number;
  balanceAfter: number;
  description: string;
  createdAt: string;
};
type Page = { items: Item[]; nextCursor: string | null };

// plans.json: a 50-credit sign-up gift and the free plan's 50 monthly credits, 5 a day for signing in.
const STARTING_BALANCE = 100;

Deno.test("GET /api/me: id, email, the free plan and the balance", async () => {
  await withApp(async (server) => {
    const { client, userId, email } = await signedUp(server);
    const result = await client.request("GET", "/api/me");
    assert.equal(result.status, 200);
    const me = result.json as Me;
    assert.deepEqual(Object.keys(me).sort(), ["balance", "email", "id", "plan"]);
    assert.deepEqual(Object.keys(me.plan).sort(), ["id", "kind", "renewsAt", "status"]);
    assert.equal(me.id, userId);
    assert.equal(me.email, email);
    assert.equal(me.balance, STARTING_BALANCE);
    const now = new Date();
    const nextMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    assert.deepEqual(me.plan, {
      id: "free",
      kind: "free",
      status: "active",
      renewsAt: nextMonth.toISOString(),
    });
  });
});

Deno.test("GET /api/me/credits: balance, what expires soon, grants in spending order", async () => {
  await withApp(async (server) => {
    const { client, userId } = await signedUp(server);
    const sql = server.db.sql;
    await sql`select credits.grant(${userId}, 7, 'bonus', 'never-expires')`;
    await sql`select credits.grant(${userId}, 3, 'bonus', 'expires-tomorrow',
                                   now() + interval '1 day')`;
    await sql`select credits.grant(${userId}, 4, 'bonus', 'already-expired',
                                   now() - interval '1 minute')`;
    await sql`select credits.consume(${userId}, 1, 'spend-one')`;

    const result = await client.request("GET", "/api/me/credits");
    assert.equal(result.status, 200);
    const body = result.json as Credits;
    assert.deepEqual(Object.keys(body).sort(), ["balance", "expiringSoon", "grants"]);
    assert.equal(body.balance, STARTING_BALANCE + 7 + 3 - 1);
    assert.deepEqual(
      body.grants.map((g) => [g.kind, g.amount, g.remaining]),
      [["bonus", 3, 2], ["signup_gift", 50, 50], ["free_monthly", 50, 50], ["bonus", 7, 7]],
    );
    for (const grant of body.grants) {
      assert.deepEqual(Object.keys(grant).sort(), [
        "amount",
        "createdAt",
        "expiresAt",
        "id",
        "kind",
        "remaining",
      ]);
      assert.equal(typeof grant.id, "number");
      assert.ok(!Number.isNaN(Date.parse(grant.createdAt)));
    }
    assert.equal(body.grants[3].expiresAt, null);
    assert.ok(Date.parse(body.grants[0].expiresAt!) < Date.now() + 86_400_000 + 1000);
    assert.equal(body.expiringSoon.amount, 2);
    const before = Date.parse(body.expiringSoon.before);
    assert.ok(Math.abs(before - (Date.now() + 7 * 86_400_000)) < 60_000);
    const balance = (await client.request("GET", "/api/me")).json as Me;
    assert.equal(balance.balance, body.balance);
  });
});

Deno.test("POST /api/me/credits/consume: 200 balance, idempotent repeat, 402 when short", async () => {
  await withApp(async (server) => {
    const { client, userId } = await signedUp(server);
    const sql = server.db.sql;
    const consume = (amount: number, idempotencyKey: string, description?: string) =>
      client.request("POST", "/api/me/credits/consume", { amount, idempotencyKey, description });

    const first = await consume(30, "order-1", "an export");
    assert.equal(first.status, 200);
    assert.deepEqual(first.json, { balance: STARTING_BALANCE - 30 });
    await sql`select credits.grant(${userId}, 10, 'bonus', 'between-the-two')`;
    const repeat = await consume(30, "order-1", "an export");
    assert.equal(repeat.status, 200);
    assert.deepEqual(repeat.json, { balance: STARTING_BALANCE - 30 }, "the first result");
    const [usage] = await sql<{ n: number; description: string }[]>`
      select count(*)::int as n, max(description) as description
        from credits.ledger where user_id = ${userId} and kind = 'usage'`;
    assert.equal(usage.n, 1);
    assert.equal(usage.description, "an export");

    const before = await ledgerState(sql, userId);
    const short = await consume(before.balance + 1, "too-much");
    assertError(short, 402, "insufficient_credits");
    assert.deepEqual(await ledgerState(sql, userId), before);
    // A refused consumption records nothing: the same key succeeds after a top-up.
    await sql`select credits.grant(${userId}, 1, 'bonus', 'top-up')`;
    const retried = await consume(before.balance + 1, "too-much");
    assert.equal(retried.status, 200);
    assert.deepEqual(retried.json, { balance: 0 });
    assertError(await consume(1, "on-empty"), 402, "insufficient_credits");
  });
});

Deno.test("POST /api/me/daily-signin grants once per UTC day", async () => {
  await withApp(async (server) => {
    const { client, userId } = await signedUp(server);
    const first = await client.request("POST", "/api/me/daily-signin");
    assert.equal(first.status, 200);
    assert.deepEqual(first.json, { granted: 5, balance: STARTING_BALANCE + 5 });
    const second = await client.request("POST", "/api/me/daily-signin");
    assert.equal(second.status, 200);
    assert.deepEqual(second.json, { granted: 0, balance: STARTING_BALANCE + 5 });
    const [row] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from credits.grants
       where user_id = ${userId} and kind = 'daily_signin'`;
    assert.equal(row.n, 1);
  });
});

Deno.test("concurrent daily sign-ins grant once", async () => {
  await withServer(async (server) => {
    const { client } = await signedUp(server);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => client.request("POST", "/api/me/daily-signin")),
    );
    assert.ok(results.every((r) => r.status === 200));
    const granted = results.map((r) => (r.json as { granted: number }).granted);
    assert.equal(granted.filter((g) => g === 5).length, 1, JSON.stringify(granted));
    assert.equal(granted.filter((g) => g === 0).length, 9);
  });
});

Deno.test("GET /api/me/transactions: newest first, paging visits every row once, kind filter", async () => {
  await withApp(async (server) => {
    const { client, userId } = await signedUp(server);
    const sql = server.db.sql;
    await sql`select credits.consume(${userId}, 1, 'use-' || n, 'use number ' || n)
                from generate_series(1, 23) n`;
    const [{ total }] = await sql<{ total: number }[]>`
      select count(*)::int as total from credits.ledger where user_id = ${userId}`;
    assert.equal(total, 25, "sign-up gift, free month, 23 usages");

    const seen: Item[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const path: string = `/api/me/transactions?limit=7${cursor ? `&cursor=${cursor}` : ""}`;
      const result = await client.request("GET", path);
      assert.equal(result.status, 200);
      const page = result.json as Page;
      assert.deepEqual(Object.keys(page).sort(), ["items", "nextCursor"]);
      assert.ok(page.items.length <= 7);
      seen.push(...page.items);
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    assert.equal(pages, 4);
    assert.equal(seen.length, total);
    assert.equal(new Set(seen.map((item) => item.id)).size, total, "no row shown twice");
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i - 1].id > seen[i].id, "newest first");
      assert.ok(Date.parse(seen[i - 1].createdAt) >= Date.parse(seen[i].createdAt));
    }
    const newest = seen[0];
    assert.deepEqual(Object.keys(newest).sort(), [
      "amount",
      "balanceAfter",
      "createdAt",
      "description",
      "id",
      "kind",
    ]);
    assert.deepEqual(
      { kind: newest.kind, amount: newest.amount, balanceAfter: newest.balanceAfter },
      { kind: "usage", amount: -1, balanceAfter: STARTING_BALANCE - 23 },
    );
    assert.equal(newest.description, "use number 23");
    assert.deepEqual(
      seen.slice(-2).map((item) => item.kind).sort(),
      ["free_monthly", "signup_gift"],
    );

    const usage = (await client.request("GET", "/api/me/transactions?kind=usage&limit=100"))
      .json as Page;
    assert.equal(usage.items.length, 23);
    assert.ok(usage.items.every((item) => item.kind === "usage"));
    assert.equal(usage.nextCursor, null);
    const gifts = (await client.request("GET", "/api/me/transactions?kind=signup_gift"))
      .json as Page;
    assert.deepEqual(gifts.items.map((item) => [item.kind, item.amount]), [["signup_gift", 50]]);
    const defaults = (await client.request("GET", "/api/me/transactions")).json as Page;
    assert.equal(defaults.items.length, 20);
    assert.notEqual(defaults.nextCursor, null);
  });
});

Deno.test("GET /api/me/transactions: a bad limit, cursor or kind is 400", async () => {
  await withApp(async (server) => {
    const { client } = await signedUp(server);
    for (
      const query of [
        "limit=0",
        "limit=-1",
        "limit=101",
        "limit=abc",
        "limit=1.5",
        "limit=",
        "cursor=abc",
        "cursor=-5",
        "cursor=1.5",
        "cursor=99999999999999999999",
        "kind=nonsense",
        "kind=USAGE",
      ]
    ) {
      assertError(
        await client.request("GET", `/api/me/transactions?${query}`),
        400,
        "invalid_request",
      );
    }
  });
});

Deno.test("without a session every /api/me route answers 401", async () => {
  await withApp(async (server) => {
    const { client, userId } = await signedUp(server);
    const routes: [string, string, unknown?][] = [
      ["GET", "/api/me"],
      ["GET", "/api/me/credits"],
      ["GET", "/api/me/transactions"],
      ["POST", "/api/me/credits/consume", { amount: 1, idempotencyKey: "x" }],
      ["POST", "/api/me/daily-signin"],
    ];
    const token = client.cookie!.slice(client.cookie!.indexOf(".") + 1);
    const cookies = [
      undefined,
      "tally_session=",
      "tally_session=garbage",
      `tally_session=${userId}.${"A".repeat(43)}`,
      `tally_session=${crypto.randomUUID()}.${token}`,
    ];
    const before = await ledgerState(server.db.sql, userId);
    for (const cookie of cookies) {
      for (const [method, path, body] of routes) {
        const result = await send(server.baseUrl, method, path, {
          body: body === undefined ? undefined : JSON.stringify(body),
          headers: {
            "content-type": "application/json",
            origin: server.baseUrl,
            ...(cookie ? { cookie } : {}),
          },
        });
        assertError(result, 401, "unauthorized");
      }
    }
    assert.deepEqual(await ledgerState(server.db.sql, userId), before);
  });
});

Deno.test("two users never read or change each other's data", async () => {
  await withApp(async (server) => {
    const alice = await signedUp(server);
    const bob = await signedUp(server);
    const sql = server.db.sql;
    await sql`select credits.grant(${alice.userId}, 11, 'bonus', 'alice-only')`;

    const spent = await alice.client.request("POST", "/api/me/credits/consume", {
      amount: 40,
      idempotencyKey: "shared-key",
      userId: bob.userId,
    });
    assert.deepEqual(spent.json, { balance: STARTING_BALANCE + 11 - 40 });
    // The same idempotency key belongs to each user separately.
    const bobSpent = await bob.client.request("POST", "/api/me/credits/consume", {
      amount: 1,
      idempotencyKey: "shared-key",
    });
    assert.deepEqual(bobSpent.json, { balance: STARTING_BALANCE - 1 });

    const bobMe = (await bob.client.request("GET", `/api/me?userId=${alice.userId}`)).json as Me;
    assert.equal(bobMe.id, bob.userId);
    assert.equal(bobMe.email, bob.email);
    assert.equal(bobMe.balance, STARTING_BALANCE - 1);
    const bobCredits = (await bob.client.request("GET", "/api/me/credits")).json as Credits;
    assert.ok(bobCredits.grants.every((g) => g.kind !== "bonus"));
    const aliceGrantIds = (await sql<{ id: number }[]>`
      select id from credits.grants where user_id = ${alice.userId}`).map((r) => r.id);
    assert.ok(bobCredits.grants.every((g) => !aliceGrantIds.includes(g.id)));

    // A cursor above every ledger id (Alice's included) still pages through Bob's rows only.
    const [aliceTop] = await sql<{ id: number }[]>`select max(id) + 1 as id from credits.ledger`;
    const bobPage = (await bob.client.request(
      "GET",
      `/api/me/transactions?limit=100&cursor=${aliceTop.id}`,
    )).json as Page;
    const bobLedger = (await sql<{ id: number }[]>`
      select id from credits.ledger where user_id = ${bob.userId} order by id desc`)
      .map((r) => r.id);
    assert.deepEqual(bobPage.items.map((item) => item.id), bobLedger);

    // Alice's user id with Bob's token is no session at all.
    const bobToken = bob.client.cookie!.slice(bob.client.cookie!.indexOf(".") + 1);
    const forged = await send(server.baseUrl, "GET", "/api/me", {
      headers: { cookie: `tally_session=${alice.userId}.${bobToken}` },
    });
    assertError(forged, 401, "unauthorized");
    assert.equal((await ledgerState(sql, alice.userId)).balance, STARTING_BALANCE + 11 - 40);
  });
});

Deno.test("bad consume requests are 400 with an error body and change nothing", async () => {
  await withApp(async (server) => {
    const { client, userId } = await signedUp(server);
    const sql = server.db.sql;
    const before = await ledgerState(sql, userId);
    const bodies: [unknown, string][] = [
      ['{"amount": 1, "idempotencyKey": ', "invalid_json"],
      ["not json at all", "invalid_json"],
      ["", "invalid_json"],
      [{ amount: 0, idempotencyKey: "k" }, "invalid_request"],
      [{ amount: -5, idempotencyKey: "k" }, "invalid_request"],
      [{ amount: 1.5, idempotencyKey: "k" }, "invalid_request"],
      [{ amount: "5", idempotencyKey: "k" }, "invalid_request"],
      [{ amount: null, idempotencyKey: "k" }, "invalid_request"],
      [{ amount: 1e300, idempotencyKey: "k" }, "invalid_request"],
      [{ idempotencyKey: "k" }, "invalid_request"],
      [{ amount: 1 }, "invalid_request"],
      [{ amount: 1, idempotencyKey: "" }, "invalid_request"],
      [{ amount: 1, idempotencyKey: 5 }, "invalid_request"],
      [{ amount: 1, idempotencyKey: "k", description: 5 }, "invalid_request"],
      [[1, "k"], "invalid_request"],
    ];
    for (const [body, code] of bodies) {
      const result = await client.request("POST", "/api/me/credits/consume", body);
      assertError(result, 400, code);
    }
    const missingField = await client.request("POST", "/api/me/credits/consume", { amount: 1 });
    assert.match((missingField.json as { message: string }).message, /idempotencyKey/);
    assert.deepEqual(await ledgerState(sql, userId), before);
    // The key that the bad requests carried was never used up.
    const ok = await client.request("POST", "/api/me/credits/consume", {
      amount: 1,
      idempotencyKey: "k",
    });
    assert.deepEqual(ok.json, { balance: before.balance - 1 });
  });
});

Deno.test("200 concurrent consume(1) requests on a balance of 100: exactly 100 succeed", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const sql = server.db.sql;
    assert.equal((await ledgerState(sql, userId)).balance, 100);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        client.request("POST", "/api/me/credits/consume", {
          amount: 1,
          idempotencyKey: `parallel-${i}`,
        })),
    );
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 100, JSON.stringify(statuses));
    assert.equal(statuses.filter((s) => s === 402).length, 100);
    const balances = results.filter((r) => r.status === 200)
      .map((r) => (r.json as { balance: number }).balance).sort((a, b) => a - b);
    assert.deepEqual(balances, Array.from({ length: 100 }, (_, i) => i), "each balance once");
    const [check] = await sql<{ balance: number; usage: number; remaining: number }[]>`
      select credits.balance(${userId}) as balance,
             (select count(*)::int from credits.ledger
               where user_id = ${userId} and kind = 'usage') as usage,
             (select coalesce(sum(remaining), 0)::int from credits.grants
               where user_id = ${userId}) as remaining`;
    assert.deepEqual(check, { balance: 0, usage: 100, remaining: 0 });
  });
});

Deno.test("concurrent consumes with one idempotency key spend once and all answer alike", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const results = await Promise.all(
      Array.from({ length: 12 }, () =>
        client.request("POST", "/api/me/credits/consume", {
          amount: 7,
          idempotencyKey: "one-purchase",
        })),
    );
    for (const result of results) {
      assert.equal(result.status, 200);
      assert.deepEqual(result.json, { balance: STARTING_BALANCE - 7 });
    }
    const after = await ledgerState(server.db.sql, userId);
    assert.equal(after.balance, STARTING_BALANCE - 7);
    assert.equal(after.ledgerRows, 3, "sign-up gift, free month, one usage");
  });
});

Deno.test("one idempotency key with amounts 1..40 at once: one amount is taken, the rest 409", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    // Each amount twice, all 80 requests at once.
    const amounts = Array.from({ length: 80 }, (_, i) => (i % 40) + 1);
    const results = await Promise.all(
      amounts.map((amount) =>
        client.request("POST", "/api/me/credits/consume", { amount, idempotencyKey: "one-key" })
      ),
    );
    const taken = amounts.filter((_, i) => results[i].status === 200);
    assert.equal(taken.length, 2, JSON.stringify(results.map((r) => r.status)));
    assert.equal(taken[0], taken[1], "both successes carry the same amount");
    for (const [i, result] of results.entries()) {
      if (amounts[i] === taken[0]) {
        assert.deepEqual(result.json, { balance: STARTING_BALANCE - taken[0] });
      } else {
        assertError(result, 409, "idempotency_key_reused");
      }
    }
    const after = await ledgerState(server.db.sql, userId);
    assert.equal(after.balance, STARTING_BALANCE - taken[0]);
    assert.equal(after.ledgerRows, 3, "sign-up gift, free month, one usage");
    // A later retry with another amount changes nothing either.
    assertError(
      await client.request("POST", "/api/me/credits/consume", {
        amount: taken[0] === 40 ? 1 : 40,
        idempotencyKey: "one-key",
      }),
      409,
      "idempotency_key_reused",
    );
    assert.deepEqual(await ledgerState(server.db.sql, userId), after);
  });
});

Deno.test("a body over 1 MB is refused with 413 and changes nothing", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const before = await ledgerState(server.db.sql, userId);
    const result = await client.request("POST", "/api/me/credits/consume", {
      amount: 1,
      idempotencyKey: "big",
      description: "x".repeat(1024 * 1024 + 10),
    });
    assertError(result, 413, "payload_too_large");
    assert.deepEqual(await ledgerState(server.db.sql, userId), before);
  });
});
