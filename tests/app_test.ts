// Issue 8, "open doors": return addresses, security headers, NUL characters, slow request
// bodies, an unreachable database, the bind address and Stripe timestamps from the future.
import assert from "node:assert/strict";
import { connect } from "../db/client.ts";
import { createApp } from "../app.ts";
import { ConfigError, parseConfig } from "../utils/config.ts";
import { configureLog } from "../utils/log.ts";
import {
  creemCheckout,
  creemEvent,
  inboxCount,
  inboxRow,
  postCreem,
  postStripe,
  stripeCheckoutSession,
  stripeEvent,
  WEBHOOK_ENV,
} from "./helpers/fixtures_webhooks.ts";
import { assertError, ledgerState, send, signedUp, withServer } from "./helpers/http.ts";
import { trickle } from "./helpers/slow_client.ts";

/** GET with the client's cookie, not following redirects: the status and the Location. */
async function location(
  baseUrl: string,
  path: string,
  cookie: string | undefined,
): Promise<{ status: number; location: string | null }> {
  const response = await fetch(`${baseUrl}${path}`, {
    redirect: "manual",
    headers: cookie ? { cookie } : {},
  });
  await response.body?.cancel();
  return { status: response.status, location: response.headers.get("location") };
}

Deno.test("next: only a path on APP_URL's origin is followed; tricks and control characters are not", async () => {
  await withServer(async (server) => {
    const { client } = await signedUp(server);
    const origin = new URL(server.baseUrl).origin;
    const hostile = [
      "/%09/evil.example",
      "/%0a/evil.example",
      "/%0d%0a/evil.example",
      "/%5C/evil.example",
      "%2F%2Fevil.example",
      "https://evil.example/",
      "//evil.example",
      "/\t/evil.example".replace("\t", "%09"),
      "javascript:alert(1)",
      "/.//evil.example",
      "/a/..//evil.example",
      "http://127.0.0.1:1/dashboard",
    ];
    for (const next of hostile) {
      for (const page of ["/login", "/signup"]) {
        const answer = await location(server.baseUrl, `${page}?next=${next}`, client.cookie);
        assert.equal(answer.status, 303, `${page}?next=${next}`);
        const target = new URL(answer.location!, server.baseUrl);
        assert.equal(target.origin, origin, `${page}?next=${next} went to ${answer.location}`);
        assert.ok(!/[\t\r\n]/.test(answer.location!), answer.location!);
        assert.ok(!answer.location!.startsWith("//"), answer.location!);
      }
    }
    // Newlines inside a path are not a 500 and never reach the Location header.
    const split = await location(
      server.baseUrl,
      "/login?next=/billing%0d%0aX-Evil:%201",
      client.cookie,
    );
    assert.equal(split.status, 303);
    assert.ok(!/[\r\n]/.test(split.location!), split.location!);
    // A path on the own origin is kept, with its query.
    const kept = await location(
      server.baseUrl,
      `/login?next=${encodeURIComponent("/billing?interval=year")}`,
      client.cookie,
    );
    assert.deepEqual(kept, { status: 303, location: "/billing?interval=year" });
    // A full URL on the own origin is a path on it, too.
    const own = await location(
      server.baseUrl,
      `/login?next=${encodeURIComponent(`${origin}/billing`)}`,
      client.cookie,
    );
    assert.deepEqual(own, { status: 303, location: "/billing" });
    // A NUL character in a query is refused, as every text with one is.
    const nul = await location(server.baseUrl, "/login?next=/%00/evil.example", client.cookie);
    assert.equal(nul.status, 400);
  });
});

Deno.test("pages and API answers carry the security headers; personal JSON is no-store", async () => {
  await withServer(async (server) => {
    const { client } = await signedUp(server);
    const answers: [string, Headers][] = [];
    for (const path of ["/", "/login", "/signup", "/dashboard", "/billing", "/no-such-page"]) {
      const response = await fetch(`${server.baseUrl}${path}`, {
        headers: { cookie: client.cookie! },
        redirect: "manual",
      });
      await response.body?.cancel();
      answers.push([path, response.headers]);
    }
    for (const path of ["/api/me", "/api/me/credits", "/api/me/transactions", "/api/nothing"]) {
      const result = await client.request("GET", path);
      answers.push([path, result.headers]);
      if (path.startsWith("/api/me")) {
        assert.match(result.headers.get("cache-control") ?? "", /no-store/, path);
      }
    }
    const anonymous = await send(server.baseUrl, "GET", "/api/me");
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get("cache-control") ?? "", /no-store/);
    answers.push(["/api/me (401)", anonymous.headers]);
    const failed = await client.request("POST", "/api/me/credits/consume", "{");
    assert.equal(failed.status, 400);
    answers.push(["/api/me/credits/consume (400)", failed.headers]);
    for (const [path, headers] of answers) {
      const csp = headers.get("content-security-policy") ?? "";
      assert.match(csp, /frame-ancestors 'none'/, path);
      const scripts = /script-src ([^;]*)/.exec(csp)?.[1] ?? /default-src ([^;]*)/.exec(csp)?.[1];
      assert.ok(scripts, `${path}: no script-src: ${csp}`);
      assert.match(scripts, /'self'/, path);
      assert.doesNotMatch(scripts, /unsafe-inline|unsafe-eval|\*/, path);
      assert.match(csp, /object-src 'none'/, path);
      assert.equal(headers.get("x-content-type-options"), "nosniff", path);
      assert.ok(headers.get("referrer-policy"), `${path}: no Referrer-Policy`);
      assert.equal(headers.get("x-frame-options"), "DENY", path);
    }
  });
});

Deno.test("a NUL character in our own inputs is a 400 and changes nothing", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const before = await ledgerState(server.db.sql, userId);
    const bad: [string, string, unknown][] = [
      ["POST", "/api/me/credits/consume", { amount: 1, idempotencyKey: "k\u0000" }],
      ["POST", "/api/me/credits/consume", {
        amount: 1,
        idempotencyKey: "k1",
        description: "a\u0000b",
      }],
      ["GET", "/api/me/transactions?kind=usage%00", undefined],
    ];
    for (const [method, path, body] of bad) {
      const result = await client.request(method, path, body);
      assertError(result, 400, "invalid_request");
      assert.match((result.json as { message: string }).message, /NUL/, path);
    }
    assert.deepEqual(await ledgerState(server.db.sql, userId), before);

    const email = `${crypto.randomUUID()}@test.local`;
    const signup = await send(server.baseUrl, "POST", "/api/auth/signup", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password: "correct horse 1", name: "Eve\u0000" }),
    });
    assertError(signup, 400, "invalid_request");
    const form = await fetch(`${server.baseUrl}/signup`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `email=${encodeURIComponent(email)}&password=correct+horse+1&name=Eve%00`,
    });
    await form.body?.cancel();
    assert.equal(form.status, 400);
    const [{ n }] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from app.users where email = ${email}`;
    assert.equal(n, 0, "no account was made");
  });
});

Deno.test("a signed event with a NUL character is kept as failed with the reason, every delivery", async () => {
  await withServer(async (server) => {
    const { sql } = server.db;
    const event = creemEvent(
      "checkout.completed",
      creemCheckout({
        productId: "prod_pkg_standard",
        customer: "cust_nul",
        email: "nul\u0000@creem.test",
      }),
    );
    for (let delivery = 1; delivery <= 2; delivery++) {
      const answer = await postCreem(server.baseUrl, event);
      assert.equal(answer.status, 200, JSON.stringify(answer));
      assert.deepEqual(answer.json, { received: true, result: "failed" });
      const row = await inboxRow(sql, "creem", event.id);
      assert.equal(row.status, "failed");
      assert.match(row.error ?? "", /NUL/);
      assert.equal(row.attempts, delivery);
    }
    // The stored copy keeps what was sent, escaped, for an admin to read.
    const [{ stored }] = await sql<{ stored: string }[]>`
      select event::text as stored from billing.webhook_events where event_id = ${event.id}`;
    assert.match(stored, /nul\\\\u0000@creem\.test/);

    // An event ID with a NUL character: kept too, under the escaped ID.
    const stripe = stripeEvent(
      "checkout.session.completed",
      stripeCheckoutSession({ userId: null, email: "x@test.local" }),
      { id: "evt_\u0000nul" },
    );
    const before = await inboxCount(sql);
    const answer = await postStripe(server.baseUrl, stripe);
    assert.equal(answer.status, 200, JSON.stringify(answer));
    assert.equal(answer.json?.result, "failed");
    assert.equal(await inboxCount(sql), before + 1);
    const row = await inboxRow(sql, "stripe", "evt_\\u0000nul");
    assert.equal(row.status, "failed");
  }, WEBHOOK_ENV);
});

Deno.test("a Stripe signature timestamped beyond the tolerance in the future is refused", async () => {
  await withServer(async (server) => {
    const event = stripeEvent("customer.created", { id: "cus_future", object: "customer" });
    const now = Math.floor(Date.now() / 1000);
    const future = await postStripe(server.baseUrl, event, { timestamp: now + 301 });
    assert.equal(future.status, 400, JSON.stringify(future));
    assert.match(String(future.json?.message), /invalid stripe signature/);
    assert.equal(await inboxCount(server.db.sql), 0);
    // A clock a minute ahead is within the tolerance.
    const skewed = await postStripe(server.baseUrl, event, { timestamp: now + 60 });
    assert.equal(skewed.status, 200, JSON.stringify(skewed));
  }, WEBHOOK_ENV);
});

Deno.test("a body that trickles in past the deadline is answered 408 and changes nothing", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const before = await ledgerState(server.db.sql, userId);
    const slow = await trickle(
      server.baseUrl,
      "/api/me/credits/consume",
      {
        cookie: client.cookie!,
        origin: server.baseUrl,
        "content-type": "application/json",
      },
      JSON.stringify({ amount: 1, idempotencyKey: "slow" }),
      { everyMs: 200 },
    );
    try {
      // Generous: the deadline is 1 s; without one the server never answers.
      const status = await slow.status(20_000);
      assert.equal(status, 408);
    } finally {
      slow.close();
    }
    assert.deepEqual(await ledgerState(server.db.sql, userId), before);
  }, { BODY_TIMEOUT_SECONDS: "1" });
});

Deno.test("bodies read at once are capped: over the cap 503 with Retry-After, freed when clients go", async () => {
  await withServer(async (server) => {
    const headers = { "content-type": "application/json" };
    const body = JSON.stringify({ email: "a@test.local", password: "12345678" });
    const slow = await Promise.all(
      [0, 1].map(() => trickle(server.baseUrl, "/api/auth/login", headers, body, { everyMs: 500 })),
    );
    let refused: Awaited<ReturnType<typeof send>> | undefined;
    for (let i = 0; i < 100 && !refused; i++) {
      const result = await send(server.baseUrl, "POST", "/api/auth/login", { headers, body });
      if (result.status === 503) refused = result;
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(refused, "the third body was read although two were being read");
    assertError(refused, 503, "unavailable");
    assert.ok(Number(refused.headers.get("retry-after")) > 0);
    for (const connection of slow) connection.close();
    let answered = 0;
    for (let i = 0; i < 100 && answered !== 401; i++) {
      answered = (await send(server.baseUrl, "POST", "/api/auth/login", { headers, body })).status;
      if (answered !== 401) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(answered, 401, "the slots came back when the slow clients went away");
  }, { BODY_READS_MAX: "2" });
});

Deno.test("a database that accepts connections and never answers gives a fast 503", async () => {
  // A black hole: it accepts TCP connections and never says a word.
  const hole = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of hole) held.push(conn);
  })().catch(() => {});
  const sql = connect(`postgres://postgres@127.0.0.1:${(hole.addr as Deno.NetAddr).port}/tally`, {
    max: 2,
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = parseConfig({ APP_URL: baseUrl, PORT: String(port) });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    createApp({ sql, config }).fetch,
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const cookie = `tally_session=${crypto.randomUUID()}.${"A".repeat(43)}`;
    const requests = Array.from(
      { length: 6 },
      () => send(baseUrl, "GET", "/api/me", { headers: { cookie } }),
    );
    const bound = new Promise<"hung">((resolve) =>
      timer = setTimeout(() => resolve("hung"), 15_000)
    );
    const results = await Promise.race([Promise.all(requests), bound]);
    assert.notEqual(results, "hung", "the requests were still waiting after 15 s");
    for (const result of results as Awaited<ReturnType<typeof send>>[]) {
      assertError(result, 503, "unavailable");
    }
  } finally {
    clearTimeout(timer);
    await server.shutdown();
    await sql.end({ timeout: 0 });
    hole.close();
    for (const conn of held) conn.close();
    await accepting;
  }
});

Deno.test("HOST is the bind address: default 0.0.0.0, an invalid one stops start-up naming it", () => {
  assert.equal(parseConfig({}).host, "0.0.0.0");
  assert.equal(parseConfig({ HOST: "127.0.0.1" }).host, "127.0.0.1");
  assert.equal(parseConfig({ HOST: "::1" }).host, "::1");
  assert.equal(parseConfig({ HOST: "localhost" }).host, "localhost");
  assert.throws(() => parseConfig({ HOST: "not a host/" }), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /^invalid setting HOST/);
    return true;
  });
  assert.equal(parseConfig({}).bodyTimeoutMs, 30_000);
  assert.throws(() => parseConfig({ BODY_TIMEOUT_SECONDS: "0" }), /BODY_TIMEOUT_SECONDS/);
});

Deno.test("a client that goes away mid-body costs no stack trace in the log, and its slot comes back", async () => {
  const logged: string[] = [];
  const lines: string[] = [];
  const original = { error: console.error, warn: console.warn, log: console.log };
  const capture = (...args: unknown[]) => logged.push(args.map(String).join(" "));
  await withServer(async (server) => {
    const paths = [
      "/api/webhooks/creem",
      "/api/webhooks/stripe",
      "/api/auth/login",
      "/api/auth/signup",
      "/login",
    ];
    console.error = console.warn = console.log = capture;
    const restoreLog = configureLog({ format: "json", write: (line) => lines.push(line) });
    try {
      const slow = await Promise.all(paths.map((path) =>
        trickle(
          server.baseUrl,
          path,
          {
            "content-type": path === "/login"
              ? "application/x-www-form-urlencoded"
              : "application/json",
            "creem-signature": "0".repeat(64),
            "stripe-signature": "t=1,v1=00",
          },
          "x".repeat(1000),
          { everyMs: 10 },
        )
      ));
      while (slow.some((s) => s.sent() < 5)) await new Promise((r) => setTimeout(r, 20));
      for (const s of slow) s.close();
      // Every slot is free again once each cut-off read has been dealt with.
      const headers = { "content-type": "application/json" };
      const body = JSON.stringify({ email: "a@test.local", password: "12345678" });
      let status = 0;
      for (let i = 0; i < 100 && status !== 401; i++) {
        status = (await send(server.baseUrl, "POST", "/api/auth/login", { headers, body })).status;
        if (status !== 401) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 401);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      restoreLog();
      Object.assign(console, original);
    }
    assert.deepEqual(logged, [], "the server wrote to the console for clients that went away");
    // Each client that went away is its one request line (info, 400), with no error or stack.
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(entries.every((e) => e.msg === "request" && e.level === "info"), lines.join("\n"));
    assert.ok(!lines.some((line) => line.includes("stack")), lines.join("\n"));
    const cutOff = entries.filter((e) => e.status === 400 || e.status === 408);
    assert.equal(cutOff.length, paths.length, lines.join("\n"));
  }, { ...WEBHOOK_ENV, BODY_READS_MAX: String(5) });
});
