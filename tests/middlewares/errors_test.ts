// A transient database fault answers 503 {"error": "unavailable"} and leaves nothing half-written.
import assert from "node:assert/strict";
import { connect } from "../../db/client.ts";
import { createApp } from "../../app.ts";
import { parseConfig } from "../../utils/config.ts";
import { survivePoolFault } from "../../utils/errors.ts";
import {
  assertError,
  closedPort,
  ledgerState,
  send,
  signedUp,
  withServer,
} from "../helpers/http.ts";

const SECRET = "cron-secret-for-tests-0123456789";

// As main.ts does: a pooled connection that PostgreSQL drops may leave a rejected promise inside
// postgres.js, which must not end the process (tests/main_test.ts checks the real server survives).
globalThis.addEventListener("unhandledrejection", survivePoolFault);

function assertUnavailable(result: { status: number; json: unknown; headers: Headers }): void {
  assertError(result, 503, "unavailable");
  assert.ok(Number(result.headers.get("retry-after")) > 0, "Retry-After");
}

Deno.test("every database-backed route answers 503 when the database cannot be reached", async () => {
  const dbPort = closedPort();
  const sql = connect(`postgres://postgres@127.0.0.1:${dbPort}/tally`, { max: 2 });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = parseConfig({ APP_URL: baseUrl, PORT: String(port), CRON_SECRET: SECRET });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    createApp({ sql, config }).fetch,
  );
  try {
    const json = { "content-type": "application/json", origin: baseUrl };
    const cookie = `tally_session=${crypto.randomUUID()}.${"A".repeat(43)}`;
    const requests: [string, string, Record<string, string>, string?][] = [
      [
        "POST",
        "/api/auth/signup",
        json,
        JSON.stringify({ email: "a@example.com", password: "12345678" }),
      ],
      [
        "POST",
        "/api/auth/login",
        json,
        JSON.stringify({ email: "a@example.com", password: "12345678" }),
      ],
      ["GET", "/api/me", { cookie }],
      ["GET", "/api/me/credits", { cookie }],
      [
        "POST",
        "/api/me/credits/consume",
        { ...json, cookie },
        JSON.stringify({ amount: 1, idempotencyKey: "k" }),
      ],
      ["POST", "/api/me/daily-signin", { ...json, cookie }],
      ["POST", "/api/auth/logout", { ...json, cookie }],
      ["POST", "/api/cron/daily", { authorization: `Bearer ${SECRET}` }],
    ];
    for (const [method, path, headers, body] of requests) {
      assertUnavailable(await send(baseUrl, method, path, { headers, body }));
    }
    // Validation needs no database: bad input is still a 400.
    assertError(
      await send(baseUrl, "POST", "/api/auth/signup", { headers: json, body: "{" }),
      400,
      "invalid_json",
    );
  } finally {
    await server.shutdown();
    await sql.end({ timeout: 1 });
  }
});

Deno.test("connections killed under a running server: 503 or success, never half-written", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const sql = server.db.sql;
    const admin = connect(Deno.env.get("TALLY_TEST_SERVER_URL")!, { max: 1 });
    try {
      const database = new URL(server.db.url).pathname.slice(1);
      const requests = Array.from(
        { length: 40 },
        (_, i) =>
          client.request("POST", "/api/me/credits/consume", {
            amount: 1,
            idempotencyKey: `kill-${i}`,
          }),
      );
      await admin`select pg_terminate_backend(pid) from pg_stat_activity
                   where datname = ${database} and pid <> pg_backend_pid()`;
      const results = await Promise.all(requests);
      for (const result of results) {
        if (result.status !== 200) assertUnavailable(result);
      }
      const succeeded = results.filter((r) => r.status === 200).length;
      const after = await ledgerState(sql, userId);
      assert.equal(after.balance, 100 - succeeded, "every 200 spent one credit, nothing else did");
      assert.equal(after.ledgerRows, 2 + succeeded);
      // The pool reconnects: the next request works.
      const next = await client.request("POST", "/api/me/credits/consume", {
        amount: 1,
        idempotencyKey: "after-the-outage",
      });
      assert.equal(next.status, 200);
    } finally {
      await admin.end();
    }
  });
});

Deno.test("a server whose database was dropped answers 503", async () => {
  await withServer(async (server) => {
    const { client } = await signedUp(server);
    const admin = connect(Deno.env.get("TALLY_TEST_SERVER_URL")!, { max: 1 });
    try {
      const database = new URL(server.db.url).pathname.slice(1);
      await admin.unsafe(`drop database "${database}" with (force)`);
    } finally {
      await admin.end();
    }
    assertUnavailable(await client.request("GET", "/api/me"));
    assertUnavailable(await client.request("POST", "/api/me/daily-signin"));
  });
});
