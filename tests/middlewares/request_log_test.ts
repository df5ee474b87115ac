// middlewares/request_log.ts through the real app: X-Request-Id on every answer (the caller's when
// safe, else a new UUID), one JSON line per request with the route pattern, status, duration and
// who asked, no secret in any line, and 500 answers (page and JSON) that name the request id.
import assert from "node:assert/strict";
import { createApiKey } from "../../utils/api_keys.ts";
import { configureLog } from "../../utils/log.ts";
import { Client, type TestServer } from "../helpers/server.ts";
import { send, signedUp, withApp, withServer } from "../helpers/http.ts";
import { trickle } from "../helpers/slow_client.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type Line = Record<string, unknown>;

/** Runs fn with the logger writing JSON lines into the returned array. */
async function capturing(fn: (lines: string[]) => Promise<void>): Promise<void> {
  const lines: string[] = [];
  const restore = configureLog({ format: "json", write: (line) => lines.push(line) });
  try {
    await fn(lines);
  } finally {
    restore();
  }
}

function requestLines(lines: string[]): Line[] {
  return lines.map((line) => JSON.parse(line) as Line).filter((line) => line.msg === "request");
}

Deno.test("every answer carries X-Request-Id: the caller's when safe, else a new UUID", async () => {
  await withApp(async (server) => {
    const given = await send(server.baseUrl, "GET", "/api/me", {
      headers: { "X-Request-Id": "req-42.abc_DEF:1" },
    });
    assert.equal(given.status, 401);
    assert.equal(given.headers.get("x-request-id"), "req-42.abc_DEF:1");

    const generated = await send(server.baseUrl, "GET", "/");
    assert.match(generated.headers.get("x-request-id") ?? "", UUID);
    const another = await send(server.baseUrl, "GET", "/");
    assert.notEqual(another.headers.get("x-request-id"), generated.headers.get("x-request-id"));

    for (const bad of ["", "has space", "a".repeat(129), 'quote"', "<script>"]) {
      const replaced = await send(server.baseUrl, "GET", "/api/me", {
        headers: { "X-Request-Id": bad },
      });
      assert.match(replaced.headers.get("x-request-id") ?? "", UUID, JSON.stringify(bad));
    }
    const longest = "a".repeat(128);
    const kept = await send(server.baseUrl, "GET", "/nowhere", {
      headers: { "X-Request-Id": longest },
    });
    assert.equal(kept.status, 404);
    assert.equal(kept.headers.get("x-request-id"), longest);
    const asset = await send(server.baseUrl, "GET", "/static/nothing-here.css");
    assert.match(asset.headers.get("x-request-id") ?? "", UUID);
  });
});

Deno.test("one JSON line per request: id, method, route pattern, status, duration, user", async () => {
  await withApp(async (server) => {
    const { client, userId } = await signedUp(server);
    await capturing(async (lines) => {
      const answer = await client.request("GET", "/api/me/transactions?limit=5", undefined, {
        "X-Request-Id": "line-test-1",
      });
      assert.equal(answer.status, 200);
      const [line] = requestLines(lines);
      assert.equal(requestLines(lines).length, 1, lines.join("\n"));
      assert.equal(line.requestId, "line-test-1");
      assert.equal(line.level, "info");
      assert.equal(line.method, "GET");
      assert.equal(line.route, "/api/me/transactions");
      assert.equal(line.status, 200);
      assert.equal(line.userId, userId);
      assert.equal(typeof line.durationMs, "number");
      assert.ok((line.durationMs as number) >= 0);
      assert.ok(!Number.isNaN(Date.parse(line.time as string)));
      assert.ok(!("apiKeyId" in line));
    });
  });
});

async function apiKeyOf(server: TestServer): Promise<{ id: number; key: string }> {
  return await createApiKey(server.db.sql, { name: "logs", scopes: ["read"], createdBy: null });
}

Deno.test("an API call logs the route pattern (not the id in the path) and the key's id, never the key", async () => {
  await withApp(async (server) => {
    const { id, key } = await apiKeyOf(server);
    await capturing(async (lines) => {
      const answer = await send(server.baseUrl, "GET", "/api/v1/customers/user_secret_path_42", {
        headers: { Authorization: `Bearer ${key}` },
      });
      assert.equal(answer.status, 404);
      const [line] = requestLines(lines);
      assert.equal(line.route, "/api/v1/customers/:externalId");
      assert.equal(line.status, 404);
      assert.equal(line.level, "info");
      assert.equal(line.apiKeyId, id);
      const all = lines.join("\n");
      assert.ok(!all.includes("user_secret_path_42"), all);
      assert.ok(!all.includes(key), all);
      assert.ok(!all.includes("tally_sk_"), all);
    });
  });
});

Deno.test("a login logs no password, cookie or session token", async () => {
  await withApp(async (server) => {
    const email = `${crypto.randomUUID()}@test.local`;
    const password = "correct horse 1";
    const first = new Client(server.baseUrl);
    await first.signup(email, password);
    await capturing(async (lines) => {
      const client = new Client(server.baseUrl);
      const login = await client.request("POST", "/api/auth/login", { email, password });
      assert.equal(login.status, 200, JSON.stringify(login.json));
      assert.ok(client.cookie, "the login set a session cookie");
      const me = await client.request("GET", "/api/me");
      assert.equal(me.status, 200);
      const all = lines.join("\n");
      assert.equal(requestLines(lines).length, 2, all);
      const cookieValue = client.cookie!.split("=").slice(1).join("=");
      for (const secret of [password, cookieValue, email]) {
        assert.ok(!all.includes(secret), `${secret} in the log:\n${all}`);
      }
      assert.ok(!/authorization|cookie|password/i.test(all), all);
    });
  });
});

Deno.test("a 500 names its request id in the JSON message, on the error page and in the log", async () => {
  await withApp(async (server) => {
    const { client } = await signedUp(server);
    // A function the routes call goes missing: an unexpected error, not a mapped one.
    await server.db.sql`alter function app.me rename to me_gone`;
    await server.db.sql`alter function app.page_dashboard rename to page_dashboard_gone`;
    await capturing(async (lines) => {
      const api = await client.request("GET", "/api/me", undefined, {
        "X-Request-Id": "boom-json",
      });
      assert.equal(api.status, 500);
      assert.equal(api.headers.get("x-request-id"), "boom-json");
      assert.deepEqual(api.json, {
        error: "internal",
        message: "internal error (request boom-json)",
      });

      const page = await client.request("GET", "/dashboard", undefined, {
        "X-Request-Id": "boom-page",
      });
      assert.equal(page.status, 500);
      assert.equal(page.headers.get("x-request-id"), "boom-page");
      assert.match(page.json as string, /Request id: <code>boom-page<\/code>/);

      const parsed = lines.map((line) => JSON.parse(line) as Line);
      const unexpected = parsed.filter((line) => line.msg === "unexpected error");
      assert.deepEqual(unexpected.map((line) => line.requestId), ["boom-json", "boom-page"]);
      assert.match(String((unexpected[0].error as { message: string }).message), /app\.me/);
      const requests = requestLines(lines);
      assert.deepEqual(requests.map((line) => [line.requestId, line.status, line.level]), [
        ["boom-json", 500, "error"],
        ["boom-page", 500, "error"],
      ]);
    });
  });
});

Deno.test("a 4xx page shows no request id; the text format is one readable line", async () => {
  await withApp(async (server) => {
    const page = await send(server.baseUrl, "GET", "/nowhere");
    assert.equal(page.status, 404);
    assert.ok(!String(page.json).includes("Request id"));
    const lines: string[] = [];
    const restore = configureLog({ format: "text", write: (line) => lines.push(line) });
    try {
      await send(server.baseUrl, "GET", "/api/me", { headers: { "X-Request-Id": "text-1" } });
      await send(server.baseUrl, "GET", "/no/such/zzqq9");
    } finally {
      restore();
    }
    assert.equal(lines.length, 2);
    assert.match(
      lines[0],
      /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO {2}request requestId=text-1 method=GET route=\/api\/me status=401 durationMs=[\d.]+$/,
    );
    // No route matched: no pattern, and never the raw path.
    assert.match(lines[1], / route=null status=404 /);
    assert.ok(!lines[1].includes("zzqq9"), lines[1]);
  });
});

Deno.test("a client that goes away mid-body is one short info line, no stack trace", async () => {
  await withServer(async (server) => {
    await capturing(async (lines) => {
      const slow = await trickle(
        server.baseUrl,
        "/api/auth/login",
        { "content-type": "application/json", "x-request-id": "gone-1" },
        JSON.stringify({ email: "gone@test.local", password: "never-logged-password" }),
        { everyMs: 50 },
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      slow.close();
      const deadline = Date.now() + 5000;
      while (requestLines(lines).length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal(lines.length, 1, lines.join("\n"));
      const [line] = requestLines(lines);
      assert.equal(line.requestId, "gone-1");
      assert.equal(line.level, "info");
      assert.equal(line.route, "/api/auth/login");
      assert.equal(line.status, 400);
      assert.ok(!lines[0].includes("stack") && !lines[0].includes("password"), lines[0]);
    });
  });
});
