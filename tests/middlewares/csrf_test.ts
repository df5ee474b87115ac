// docs/api.md#cross-site-requests: a state-changing request carrying the session
// cookie, and every sign-up, login and logout request with or without a cookie, is refused with
// 403 when Origin names another origin than APP_URL, or, lacking Origin, when Sec-Fetch-Site is
// cross-site. Other requests without the cookie are not refused for CSRF.
import assert from "node:assert/strict";
import { assertError, ledgerState, send, signedUp, withServer } from "../helpers/http.ts";

const CONSUME = JSON.stringify({ amount: 10, idempotencyKey: "csrf-probe" });

Deno.test("a cross-origin POST with the session cookie is 403 and changes nothing", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const sql = server.db.sql;
    const before = await ledgerState(sql, userId);
    const appPort = new URL(server.baseUrl).port;
    const foreignOrigins = [
      "https://evil.example",
      "null",
      `https://127.0.0.1:${appPort}`, // another scheme
      "http://127.0.0.1:1", // another port
      `http://localhost:${appPort}`, // another host name for the same machine
      `${server.baseUrl}.evil.example`,
    ];
    for (const origin of foreignOrigins) {
      for (
        const [path, body] of [
          ["/api/me/credits/consume", CONSUME],
          ["/api/me/daily-signin", undefined],
          ["/api/auth/logout", undefined],
        ] as const
      ) {
        const result = await send(server.baseUrl, "POST", path, {
          body,
          headers: { "content-type": "application/json", cookie: client.cookie!, origin },
        });
        assertError(result, 403, "forbidden");
      }
    }
    assert.deepEqual(await ledgerState(sql, userId), before);
    // The refused logout did not end the session.
    assert.equal((await client.request("GET", "/api/me")).status, 200);
  });
});

Deno.test("without Origin, Sec-Fetch-Site decides: cross-site is 403, others pass", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const sql = server.db.sql;
    const before = await ledgerState(sql, userId);
    const crossSite = await send(server.baseUrl, "POST", "/api/me/credits/consume", {
      body: CONSUME,
      headers: {
        "content-type": "application/json",
        cookie: client.cookie!,
        "sec-fetch-site": "cross-site",
      },
    });
    assertError(crossSite, 403, "forbidden");
    assert.deepEqual(await ledgerState(sql, userId), before);

    let spent = 0;
    for (const site of ["same-origin", "same-site", "none", undefined]) {
      const result = await send(server.baseUrl, "POST", "/api/me/credits/consume", {
        body: JSON.stringify({ amount: 1, idempotencyKey: `site-${site}` }),
        headers: {
          "content-type": "application/json",
          cookie: client.cookie!,
          ...(site ? { "sec-fetch-site": site } : {}),
        },
      });
      spent++;
      assert.equal(result.status, 200, `Sec-Fetch-Site ${site}`);
      assert.deepEqual(result.json, { balance: before.balance - spent });
    }
  });
});

Deno.test("Origin wins over Sec-Fetch-Site; same-origin requests need no token", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const sameOrigin = await send(server.baseUrl, "POST", "/api/me/credits/consume", {
      body: CONSUME,
      headers: {
        "content-type": "application/json",
        cookie: client.cookie!,
        origin: server.baseUrl,
        "sec-fetch-site": "cross-site",
      },
    });
    assert.equal(sameOrigin.status, 200);
    const foreign = await send(server.baseUrl, "POST", "/api/me/daily-signin", {
      headers: {
        cookie: client.cookie!,
        origin: "https://evil.example",
        "sec-fetch-site": "same-origin",
      },
    });
    assertError(foreign, 403, "forbidden");
    assert.equal((await ledgerState(server.db.sql, userId)).balance, 90);
  });
});

Deno.test("reads are never refused for CSRF, whatever their Origin", async () => {
  await withServer(async (server) => {
    const { client } = await signedUp(server);
    const result = await send(server.baseUrl, "GET", "/api/me", {
      headers: {
        cookie: client.cookie!,
        origin: "https://evil.example",
        "sec-fetch-site": "cross-site",
      },
    });
    assert.equal(result.status, 200);
  });
});

Deno.test("a POST without the session cookie, outside the account routes, is not refused for CSRF", async () => {
  await withServer(async (server) => {
    const foreign = { origin: "https://evil.example", "sec-fetch-site": "cross-site" };
    // No cookie, no session: the answer is 401, not 403.
    const consume = await send(server.baseUrl, "POST", "/api/me/credits/consume", {
      body: CONSUME,
      headers: { "content-type": "application/json", ...foreign },
    });
    assertError(consume, 401, "unauthorized");
  });
});

const FOREIGN_HEADERS: Record<string, string>[] = [
  { origin: "https://evil.example" },
  { origin: "null" },
  { origin: "https://evil.example", "sec-fetch-site": "same-origin" },
  { "sec-fetch-site": "cross-site" },
];

Deno.test("cross-site sign-up, login and logout are 403 without a cookie too (API and forms), changing nothing", async () => {
  await withServer(async (server) => {
    const { email } = await signedUp(server);
    const credentials = { email, password: "correct horse 1" };
    const fresh = { email: "victim-login@example.com", password: "correct horse 1" };
    const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
    const requests: [string, string | undefined, string][] = [
      ["/api/auth/signup", JSON.stringify(fresh), "application/json"],
      ["/api/auth/login", JSON.stringify(credentials), "application/json"],
      ["/api/auth/logout", undefined, "application/json"],
      ["/signup", form(fresh), "application/x-www-form-urlencoded"],
      ["/login", form(credentials), "application/x-www-form-urlencoded"],
      ["/logout", undefined, "application/x-www-form-urlencoded"],
    ];
    for (const headers of FOREIGN_HEADERS) {
      for (const [path, body, type] of requests) {
        const result = await send(server.baseUrl, "POST", path, {
          body,
          headers: { "content-type": type, ...headers },
        });
        const label = `${path} ${JSON.stringify(headers)}`;
        assert.equal(result.status, 403, label);
        assert.equal(result.headers.getSetCookie().length, 0, label);
        if (path.startsWith("/api/")) assertError(result, 403, "forbidden");
      }
    }
    const [users] = await server.db.sql<{ n: number }[]>`select count(*)::int as n from app.users`;
    assert.equal(users.n, 1, "no account was created");
    const [sessions] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from app.sessions`;
    assert.equal(sessions.n, 1, "only the sign-up's session exists");
  });
});

Deno.test("same-origin and header-less (non-browser) sign-up, login and logout still work", async () => {
  await withServer(async (server) => {
    const json = { "content-type": "application/json" };
    const allowed: Record<string, string>[] = [
      { origin: server.baseUrl },
      { "sec-fetch-site": "same-origin" },
      { "sec-fetch-site": "none" },
      {},
    ];
    for (const headers of allowed) {
      const email = `${crypto.randomUUID()}@test.local`;
      const body = JSON.stringify({ email, password: "correct horse 1" });
      const label = JSON.stringify(headers);
      const signup = await send(server.baseUrl, "POST", "/api/auth/signup", {
        body,
        headers: { ...json, ...headers },
      });
      assert.equal(signup.status, 201, label);
      const login = await send(server.baseUrl, "POST", "/api/auth/login", {
        body,
        headers: { ...json, ...headers },
      });
      assert.equal(login.status, 200, label);
      const cookie = login.headers.getSetCookie()[0].split(";")[0];
      const out = await send(server.baseUrl, "POST", "/api/auth/logout", {
        headers: { ...headers, cookie },
      });
      assert.equal(out.status, 204, label);
      const page = await send(server.baseUrl, "POST", "/login", {
        body: new URLSearchParams({ email, password: "correct horse 1" }).toString(),
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      });
      // The form redirects, but fetch follows it: the page after login is what we see.
      assert.equal(page.status, 200, label);
    }
  });
});

Deno.test("APP_URL with a trailing slash still admits its own origin", async () => {
  await withServer(async (server) => {
    const { client } = await signedUp(server);
    const result = await send(server.baseUrl, "POST", "/api/me/daily-signin", {
      headers: { cookie: client.cookie!, origin: "https://app.example.com" },
    });
    assert.equal(result.status, 200);
  }, { APP_URL: "https://app.example.com/" });
});
