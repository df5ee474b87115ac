// Contract section 5, cross-site request forgery: a state-changing request carrying the session
// cookie is refused with 403 when Origin names another origin than APP_URL, or, lacking Origin,
// when Sec-Fetch-Site is cross-site. Requests without the cookie are not refused for CSRF.
import assert from "node:assert/strict";
import { assertError, ledgerState, send, signedUp, withServer } from "./helpers/http.ts";

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

Deno.test("a POST without the session cookie is not refused for CSRF", async () => {
  await withServer(async (server) => {
    const { email } = await signedUp(server);
    const foreign = { origin: "https://evil.example", "sec-fetch-site": "cross-site" };
    const signup = await send(server.baseUrl, "POST", "/api/auth/signup", {
      body: JSON.stringify({ email: "elsewhere@example.com", password: "correct horse 1" }),
      headers: { "content-type": "application/json", ...foreign },
    });
    assert.equal(signup.status, 201);
    const login = await send(server.baseUrl, "POST", "/api/auth/login", {
      body: JSON.stringify({ email, password: "correct horse 1" }),
      headers: { "content-type": "application/json", ...foreign },
    });
    assert.equal(login.status, 200);
    // No cookie, no session: the answer is 401, not 403.
    const consume = await send(server.baseUrl, "POST", "/api/me/credits/consume", {
      body: CONSUME,
      headers: { "content-type": "application/json", ...foreign },
    });
    assertError(consume, 401, "unauthorized");
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
