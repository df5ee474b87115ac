// client/tally.ts against a real Tally through local stand-ins of a flaky network: keyed POSTs are
// retried on 503, 429 (after Retry-After, capped) and a lost answer, with the same key and body,
// so a retry never spends twice; consume makes its key once; settle and release, idempotent by
// rule, are retried too.
import assert from "node:assert/strict";
import { createTallyClient, retryDelay } from "../../client/tally.ts";
import { books, newCustomer, withV1 } from "../routes/api/v1/_v1.ts";

type Seen = { method: string; path: string; body: string };

/** An HTTP front of Tally that answers the first `failures` requests itself with `status`. */
function flakyFront(upstream: string, failures: number, status = 503, retryAfter = "0") {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const body = await req.text();
    seen.push({ method: req.method, path: url.pathname, body });
    if (seen.length <= failures) {
      return Response.json({ error: "unavailable", message: "stand-in failure" }, {
        status,
        headers: { "Retry-After": retryAfter },
      });
    }
    return await fetch(`${upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
      body: body.length > 0 ? body : undefined,
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    close: () => server.shutdown(),
  };
}

/**
 * A TCP front of Tally that passes the first connection's request on but drops Tally's answer
 * (the connection closes once Tally has answered): the request was applied, the client saw a
 * network error. Later connections pass both ways.
 */
function lossyFront(upstreamPort: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const done = (async () => {
    for await (const conn of listener) {
      const first = ++connections === 1;
      (async () => {
        const upstream = await Deno.connect({ hostname: "127.0.0.1", port: upstreamPort });
        const toTally = conn.readable.pipeTo(upstream.writable).catch(() => {});
        if (first) {
          const reader = upstream.readable.getReader();
          await reader.read();
          conn.close();
          reader.releaseLock();
          upstream.close();
        } else {
          await upstream.readable.pipeTo(conn.writable).catch(() => {});
        }
        await toTally;
      })().catch(() => {});
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    connections: () => connections,
    close: async () => {
      listener.close();
      await done;
    },
  };
}

Deno.test("consume is retried after 503s with the same key and body, and spends once", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "flaky");
    const front = flakyFront(v1.server.baseUrl, 2);
    try {
      const client = createTallyClient({
        baseUrl: front.url,
        apiKey: v1.writeKey,
        retries: 3,
        backoffMs: 1,
      });
      const answer = await client.consume("flaky", { amount: 7 });
      assert.equal(answer.response.status, 200);
      assert.equal(answer.data?.balance, 93);
      assert.equal(front.seen.length, 3);
      const bodies = new Set(front.seen.map((s) => s.body));
      assert.equal(bodies.size, 1, "every attempt sent the same body");
      const key = JSON.parse(front.seen[0].body).idempotencyKey;
      assert.match(key, /^[0-9a-f-]{36}$/, "the client made a key");
      assert.equal((await books(v1, "flaky")).balance, 93);
    } finally {
      await front.close();
    }
  });
});

Deno.test("429 is retried after Retry-After; a long Retry-After is capped", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "limited");
    const front = flakyFront(v1.server.baseUrl, 1, 429, "1");
    try {
      const client = createTallyClient({ baseUrl: front.url, apiKey: v1.writeKey, backoffMs: 1 });
      const started = Date.now();
      const answer = await client.reserve("limited", { amount: 5, idempotencyKey: "hold-1" });
      assert.ok(Date.now() - started >= 900, "waited for Retry-After: 1");
      assert.equal(answer.response.status, 201);
      assert.deepEqual(front.seen.map((s) => JSON.parse(s.body).idempotencyKey), [
        "hold-1",
        "hold-1",
      ]);
    } finally {
      await front.close();
    }
    const capped = flakyFront(v1.server.baseUrl, 1, 429, "3600");
    try {
      const client = createTallyClient({
        baseUrl: capped.url,
        apiKey: v1.writeKey,
        maxBackoffMs: 20,
      });
      const started = Date.now();
      const answer = await client.grant("limited", { amount: 1, sourceKey: "cap-1" });
      assert.equal(answer.response.status, 201);
      assert.ok(Date.now() - started < 2000, "an hour's Retry-After was capped");
    } finally {
      await capped.close();
    }
  });
});

Deno.test("a lost answer is retried with the same key: the second answer is the first's replay", async () => {
  await withV1(async (v1) => {
    await newCustomer(v1, "lossy");
    const front = lossyFront(Number(new URL(v1.server.baseUrl).port));
    try {
      const client = createTallyClient({ baseUrl: front.url, apiKey: v1.writeKey, backoffMs: 1 });
      const answer = await client.consume("lossy", { amount: 12 });
      assert.equal(answer.response.status, 200, JSON.stringify(answer.error));
      assert.equal(answer.data?.balance, 88);
      assert.ok(front.connections() >= 2, "the first connection's answer was lost");
      const state = await books(v1, "lossy");
      assert.equal(state.balance, 88, "spent once");
      const [row] = await v1.server.db.sql<{ n: number }[]>`
        select count(*)::int as n from credits.ledger l join app.users u on u.id = l.user_id
         where u.external_id = 'lossy' and l.kind = 'usage'`;
      assert.equal(row.n, 1);
    } finally {
      await front.close();
    }
  });
});

Deno.test("retries end after the given number; settle and release (idempotent by rule) are retried too", async () => {
  await withV1(async (v1) => {
    const customer = await newCustomer(v1, "tired");
    assert.equal(customer.balance, 100);
    const front = flakyFront(v1.server.baseUrl, 100);
    try {
      const client = createTallyClient({
        baseUrl: front.url,
        apiKey: v1.writeKey,
        retries: 2,
        backoffMs: 1,
      });
      const answer = await client.consume("tired", { amount: 1, idempotencyKey: "t1" });
      assert.equal(answer.response.status, 503);
      assert.equal(answer.error?.error, "unavailable");
      assert.equal(front.seen.length, 3, "the first attempt and two retries");
      front.seen.length = 0;
      const release = await client.release(1);
      assert.equal(release.response.status, 503);
      assert.equal(front.seen.length, 3, "a release can be repeated: retried");
      front.seen.length = 0;
      const settle = await client.settle(1, { amount: 1 });
      assert.equal(settle.response.status, 503);
      assert.equal(front.seen.length, 3, "a settlement repeated answers the first: retried");
    } finally {
      await front.close();
    }
  });
});

Deno.test("retryDelay: doubling backoff, Retry-After in seconds or as a date, capped", () => {
  assert.equal(retryDelay(0, null, 100, 10_000), 100);
  assert.equal(retryDelay(3, null, 100, 10_000), 800);
  assert.equal(retryDelay(10, null, 100, 10_000), 10_000);
  assert.equal(retryDelay(0, "2", 100, 10_000), 2000);
  assert.equal(retryDelay(0, "3600", 100, 10_000), 10_000);
  const inFiveSeconds = new Date(Date.now() + 5000).toUTCString();
  const wait = retryDelay(0, inFiveSeconds, 100, 10_000);
  assert.ok(wait > 3000 && wait <= 5000, String(wait));
  assert.equal(retryDelay(0, "garbage", 100, 10_000), 100);
});
