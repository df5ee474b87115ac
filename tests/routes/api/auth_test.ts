// docs/api.md#accounts-and-sessions: sign-up, login, logout, the session cookie, session expiry and
// renewal, and the failed-login limit.
import assert from "node:assert/strict";
import { assertError, parseSetCookie, send, signedUp, withServer } from "../../helpers/http.ts";
import { Client } from "../../helpers/server.ts";

const PASSWORD = "correct horse 1";
const SESSION_SECONDS = 30 * 24 * 3600;

async function userCount(sql: import("../../../db/client.ts").Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from app.users`;
  return row.n;
}

Deno.test("sign-up answers 201 with the user and a session cookie that opens /api/me", async () => {
  await withServer(async (server) => {
    const client = new Client(server.baseUrl);
    const email = `New.User+${crypto.randomUUID().slice(0, 8)}@Example.COM`;
    const result = await client.request("POST", "/api/auth/signup", {
      email,
      password: PASSWORD,
      name: "New User",
    });
    assert.equal(result.status, 201);
    const body = result.json as { user: { id: string; email: string } };
    assert.deepEqual(Object.keys(body), ["user"]);
    assert.deepEqual(Object.keys(body.user).sort(), ["email", "id"]);
    assert.match(body.user.id, /^[0-9a-f-]{36}$/);
    assert.equal(body.user.email, email.toLowerCase());
    assert.ok(client.cookie?.startsWith(`tally_session=${body.user.id}.`));

    const me = await client.request("GET", "/api/me");
    assert.equal(me.status, 200);
    assert.equal((me.json as { id: string }).id, body.user.id);
    const [stored] = await server.db.sql<{ password_hash: string }[]>`
      select password_hash from app.users where id = ${body.user.id}`;
    assert.match(stored.password_hash, /^\$argon2id\$/);
    assert.ok(!stored.password_hash.includes(PASSWORD));
  });
});

Deno.test("sign-up: a taken email is 409, whatever its case; nothing is created", async () => {
  await withServer(async (server) => {
    const { email } = await signedUp(server);
    const before = await userCount(server.db.sql);
    const again = await new Client(server.baseUrl).request("POST", "/api/auth/signup", {
      email: email.toUpperCase(),
      password: "another password",
    });
    assertError(again, 409, "email_taken");
    assert.equal(again.headers.getSetCookie().length, 0);
    assert.equal(await userCount(server.db.sql), before);
  });
});

Deno.test("sign-up: bad email, short password, missing fields, wrong types are 400", async () => {
  await withServer(async (server) => {
    const bodies: unknown[] = [
      { email: "not-an-email", password: PASSWORD },
      { email: "", password: PASSWORD },
      { email: "a@b.example", password: "1234567" },
      { email: "a@b.example" },
      { password: PASSWORD },
      { email: 42, password: PASSWORD },
      { email: "a@b.example", password: 12345678 },
      { email: "a@b.example", password: PASSWORD, name: 7 },
      [],
      null,
      JSON.stringify("a JSON string, not an object"),
    ];
    for (const body of bodies) {
      const result = await new Client(server.baseUrl).request("POST", "/api/auth/signup", body);
      assertError(result, 400, "invalid_request");
      assert.equal(result.headers.getSetCookie().length, 0, JSON.stringify(body));
    }
    const notJson = await new Client(server.baseUrl).request(
      "POST",
      "/api/auth/signup",
      '{"email": "a@b.example", "password": ',
    );
    assertError(notJson, 400, "invalid_json");
    const short = await new Client(server.baseUrl).request("POST", "/api/auth/signup", {
      email: "a@b.example",
      password: "1234567",
    });
    assert.match((short.json as { message: string }).message, /password/);
    assert.equal(await userCount(server.db.sql), 0);
  });
});

Deno.test("login answers 200 with a new cookie; wrong password or unknown email is 401", async () => {
  await withServer(async (server) => {
    const { email, userId } = await signedUp(server);
    const client = new Client(server.baseUrl);
    const ok = await client.request("POST", "/api/auth/login", {
      email: email.toUpperCase(),
      password: PASSWORD,
    });
    assert.equal(ok.status, 200);
    assert.ok(client.cookie?.startsWith(`tally_session=${userId}.`));
    assert.equal((await client.request("GET", "/api/me")).status, 200);

    const wrong = await new Client(server.baseUrl).request("POST", "/api/auth/login", {
      email,
      password: "wrong password",
    });
    assertError(wrong, 401, "unauthorized");
    assert.equal(wrong.headers.getSetCookie().length, 0);
    const unknown = await new Client(server.baseUrl).request("POST", "/api/auth/login", {
      email: "nobody@example.com",
      password: PASSWORD,
    });
    assertError(unknown, 401, "unauthorized");
    // The two refusals must not tell an attacker which emails have accounts.
    assert.equal(
      (wrong.json as { message: string }).message,
      (unknown.json as { message: string }).message,
    );
    assertError(
      await new Client(server.baseUrl).request("POST", "/api/auth/login", { email }),
      400,
      "invalid_request",
    );
  });
});

Deno.test("logout answers 204, clears the cookie, and the old session no longer works", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const oldCookie = client.cookie!;
    const out = await client.request("POST", "/api/auth/logout");
    assert.equal(out.status, 204);
    assert.equal(out.json, null);
    const cleared = parseSetCookie(out.headers);
    assert.equal(cleared.name, "tally_session");
    assert.equal(cleared.value, "");
    assert.equal(cleared.attributes.get("max-age"), "0");

    const replay = await send(server.baseUrl, "GET", "/api/me", {
      headers: { cookie: oldCookie },
    });
    assertError(replay, 401, "unauthorized");
    const [row] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from app.sessions where user_id = ${userId}`;
    assert.equal(row.n, 0);
    // Logging out twice, or without a session, is harmless.
    assert.equal((await client.request("POST", "/api/auth/logout")).status, 204);
  });
});

Deno.test("logout ends only its own session: another device stays signed in", async () => {
  await withServer(async (server) => {
    const { client: laptop, email } = await signedUp(server);
    const phone = new Client(server.baseUrl);
    assert.equal(
      (await phone.request("POST", "/api/auth/login", { email, password: PASSWORD })).status,
      200,
    );
    assert.equal((await laptop.request("POST", "/api/auth/logout")).status, 204);
    assert.equal((await phone.request("GET", "/api/me")).status, 200);
  });
});

Deno.test("session cookie flags on http: HttpOnly, SameSite=Lax, Path=/, Max-Age, no Secure", async () => {
  await withServer(async (server) => {
    const { email } = await signedUp(server);
    for (
      const [path, body] of [
        ["/api/auth/signup", { email: "flags@example.com", password: PASSWORD }],
        ["/api/auth/login", { email, password: PASSWORD }],
      ] as const
    ) {
      const result = await new Client(server.baseUrl).request("POST", path, body);
      assert.ok(result.status === 200 || result.status === 201, JSON.stringify(result.json));
      const cookie = parseSetCookie(result.headers);
      assert.equal(cookie.name, "tally_session");
      assert.ok(cookie.attributes.has("httponly"), path);
      assert.equal(cookie.attributes.get("samesite"), "Lax");
      assert.equal(cookie.attributes.get("path"), "/");
      assert.equal(cookie.attributes.get("max-age"), String(SESSION_SECONDS));
      assert.ok(!cookie.attributes.has("secure"), `${path}: Secure on an http APP_URL`);
    }
  });
});

Deno.test("session cookie is Secure when APP_URL is https", async () => {
  await withServer(async (server) => {
    // Sign-up is refused for CSRF unless it comes from APP_URL's origin.
    const signup = await new Client(server.baseUrl, server.config.appOrigin).request(
      "POST",
      "/api/auth/signup",
      { email: "secure@example.com", password: PASSWORD },
    );
    assert.equal(signup.status, 201);
    const cookie = parseSetCookie(signup.headers);
    assert.ok(cookie.attributes.has("secure"));
    assert.ok(cookie.attributes.has("httponly"));
    assert.equal(cookie.attributes.get("samesite"), "Lax");

    // Same origin as APP_URL, as the browser behind a TLS proxy would send it.
    const login = await send(server.baseUrl, "POST", "/api/auth/login", {
      body: JSON.stringify({ email: "secure@example.com", password: PASSWORD }),
      headers: { "content-type": "application/json", origin: "https://tally.example.com" },
    });
    assert.equal(login.status, 200);
    assert.ok(parseSetCookie(login.headers).attributes.has("secure"));
    const out = await send(server.baseUrl, "POST", "/api/auth/logout", {
      headers: {
        cookie: `tally_session=${parseSetCookie(login.headers).value}`,
        origin: "https://tally.example.com",
      },
    });
    assert.equal(out.status, 204);
    assert.ok(parseSetCookie(out.headers).attributes.has("secure"));
  }, { APP_URL: "https://tally.example.com" });
});

Deno.test("an expired session answers 401; a session in use is renewed", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const sql = server.db.sql;

    // Used recently: no renewal, no new cookie.
    const fresh = await client.request("GET", "/api/me");
    assert.equal(fresh.status, 200);
    assert.equal(fresh.headers.getSetCookie().length, 0);

    // Last seen two days ago and expiring within the hour: this use pushes expiry 30 days out.
    await sql`update app.sessions set last_seen_at = now() - interval '2 days',
                                      expires_at = now() + interval '1 hour'
               where user_id = ${userId}`;
    const renewed = await client.request("GET", "/api/me");
    assert.equal(renewed.status, 200);
    const cookie = parseSetCookie(renewed.headers);
    assert.equal(cookie.attributes.get("max-age"), String(SESSION_SECONDS));
    assert.equal(`tally_session=${cookie.value}`, client.cookie);
    const [row] = await sql<{ days: number }[]>`
      select extract(epoch from expires_at - now()) / 86400 as days
        from app.sessions where user_id = ${userId}`;
    assert.ok(row.days > 29.9 && row.days <= 30, `expiry ${row.days} days out`);

    // Past its expiry, the same cookie opens nothing.
    await sql`update app.sessions set expires_at = now() - interval '1 second'
               where user_id = ${userId}`;
    assertError(await client.request("GET", "/api/me"), 401, "unauthorized");
    assertError(
      await client.request("POST", "/api/me/daily-signin"),
      401,
      "unauthorized",
    );
  });
});

Deno.test("app.session_user renews only when due and refuses after expiry (moved clock)", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const token = client.cookie!.slice(client.cookie!.indexOf(".") + 1);
    const sql = server.db.sql;
    const [hash] = await sql<{ h: Uint8Array }[]>`select sha256(convert_to(${token}, 'UTF8')) as h`;
    const at = (offset: string) =>
      sql<{ id: string; renewed_until: Date | null }[]>`
        select id, renewed_until from app.session_user(${userId}, ${hash.h},
                                                       now() + ${offset}::interval)`;
    assert.equal((await at("1 hour"))[0].renewed_until, null);
    const renewed = await at("20 days");
    assert.equal(renewed[0].id, userId);
    assert.ok(renewed[0].renewed_until !== null);
    // Renewed at day 20, so alive at day 45, dead at day 51.
    assert.equal((await at("45 days")).length, 1);
    assert.equal((await at("80 days")).length, 0);
  });
});

Deno.test("5 failed logins lock the email for 15 minutes, even for the right password", async () => {
  await withServer(async (server) => {
    const { email } = await signedUp(server);
    const { email: other } = await signedUp(server);
    const login = (who: string, password: string) =>
      new Client(server.baseUrl).request("POST", "/api/auth/login", { email: who, password });
    for (let i = 0; i < 4; i++) {
      assertError(await login(email, "wrong password"), 401, "unauthorized");
    }
    assert.equal((await login(email, PASSWORD)).status, 200, "4 failures do not lock");
    // A success forgets the failures: five more are needed.
    for (let i = 0; i < 5; i++) {
      assertError(await login(email, "wrong password"), 401, "unauthorized");
    }

    const locked = await login(email, PASSWORD);
    assertError(locked, 429, "too_many_requests");
    assert.equal(locked.headers.getSetCookie().length, 0);
    const retryAfter = Number(locked.headers.get("retry-after"));
    assert.ok(retryAfter > 890 && retryAfter <= 900, `Retry-After ${retryAfter}`);
    assertError(await login(email.toUpperCase(), PASSWORD), 429, "too_many_requests");
    assert.equal((await login(other, PASSWORD)).status, 200, "another email is not locked");

    // Sign-up is not limited, not even for the locked address's neighbours.
    for (let i = 0; i < 6; i++) {
      const result = await new Client(server.baseUrl).request("POST", "/api/auth/signup", {
        email: `burst${i}@example.com`,
        password: PASSWORD,
      });
      assert.equal(result.status, 201);
    }

    // Fifteen minutes later the lock is over.
    await server.db.sql`update app.login_locks set locked_until = now() - interval '1 second'`;
    assert.equal((await login(email, PASSWORD)).status, 200);
  });
});

Deno.test("failed logins older than 15 minutes do not count towards the lock", async () => {
  await withServer(async (server) => {
    const { email } = await signedUp(server);
    const login = (password: string) =>
      new Client(server.baseUrl).request("POST", "/api/auth/login", { email, password });
    for (let i = 0; i < 4; i++) assertError(await login("wrong password"), 401, "unauthorized");
    await server.db
      .sql`update app.login_failures set failed_at = failed_at - interval '16 minutes'`;
    assertError(await login("wrong password"), 401, "unauthorized");
    assert.equal((await login(PASSWORD)).status, 200);
  });
});

Deno.test("concurrent failed logins are each counted: 8 at once lock the email", async () => {
  await withServer(async (server) => {
    const { email } = await signedUp(server);
    const results = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Client(server.baseUrl).request("POST", "/api/auth/login", {
            email,
            password: "wrong password",
          }),
      ),
    );
    assert.ok(results.every((r) => r.status === 401 || r.status === 429));
    const next = await new Client(server.baseUrl).request("POST", "/api/auth/login", {
      email,
      password: PASSWORD,
    });
    assertError(next, 429, "too_many_requests");
  });
});

Deno.test("concurrent sign-ups with one email: one 201, the rest 409", async () => {
  await withServer(async (server) => {
    const results = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          new Client(server.baseUrl).request("POST", "/api/auth/signup", {
            email: "race@example.com",
            password: PASSWORD,
          }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [201, 409, 409, 409, 409]);
    for (const result of results.filter((r) => r.status === 409)) {
      assertError(result, 409, "email_taken");
    }
    assert.equal(await userCount(server.db.sql), 1);
    const [grants] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from credits.grants`;
    assert.equal(grants.n, 2, "one sign-up's grants only");
  });
});

/** Sends the given login bodies all at once, each from a fresh client. */
function loginBurst(
  baseUrl: string,
  bodies: { email: string; password: string }[],
): Promise<{ status: number; json: unknown; headers: Headers }[]> {
  return Promise.all(
    bodies.map((body) => new Client(baseUrl).request("POST", "/api/auth/login", body)),
  );
}

Deno.test("40 logins at once, the right password last: at most 5 passwords are checked", async () => {
  await withServer(async (server) => {
    const { email } = await signedUp(server);
    const bodies = Array.from(
      { length: 40 },
      (_, i) => ({ email, password: i === 39 ? PASSWORD : `wrong password ${i}` }),
    );
    const results = await loginBurst(server.baseUrl, bodies);
    // Every answer other than 429 is a password that was checked (401 wrong, 200 right).
    const checked = results.filter((r) => r.status !== 429);
    assert.ok(checked.length <= 5, `${checked.length} passwords checked`);
    assert.ok(checked.every((r) => r.status === 401 || r.status === 200));
    for (const refused of results.filter((r) => r.status === 429)) {
      assertError(refused, 429, "too_many_requests");
      assert.ok(Number(refused.headers.get("retry-after")) > 0, "Retry-After");
    }
    // The right password got in only if it was among the checked ones, never after them.
    const last = results[39];
    assert.ok(last.status === 429 || last.status === 200, JSON.stringify(last));
  });
});

Deno.test("200 wrong passwords at once: 5 checked, the other 195 answer 429, then the lock holds", async () => {
  await withServer(async (server) => {
    const { email } = await signedUp(server);
    const results = await loginBurst(
      server.baseUrl,
      Array.from({ length: 200 }, (_, i) => ({ email, password: `wrong password ${i}` })),
    );
    const statuses = new Map<number, number>();
    for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(statuses), { 401: 5, 429: 195 });
    // The five failures locked the email: the right password is refused for 15 minutes.
    const next = await new Client(server.baseUrl).request("POST", "/api/auth/login", {
      email,
      password: PASSWORD,
    });
    assertError(next, 429, "too_many_requests");
    const retryAfter = Number(next.headers.get("retry-after"));
    assert.ok(retryAfter > 890 && retryAfter <= 900, `Retry-After ${retryAfter}`);
  });
});

Deno.test("an unknown email gets the same limit: 5 checked, then 429", async () => {
  await withServer(async (server) => {
    const results = await loginBurst(
      server.baseUrl,
      Array.from({ length: 20 }, () => ({ email: "nobody@example.com", password: PASSWORD })),
    );
    assert.deepEqual(results.map((r) => r.status).sort(), [
      ...Array(5).fill(401),
      ...Array(15).fill(429),
    ]);
  });
});

const signupBody = () =>
  JSON.stringify({ email: `${crypto.randomUUID()}@test.local`, password: PASSWORD });

/** One JSON sign-up from APP_URL's origin, with extra headers. */
function signupWith(baseUrl: string, headers: Record<string, string> = {}) {
  return send(baseUrl, "POST", "/api/auth/signup", {
    body: signupBody(),
    headers: { "content-type": "application/json", origin: baseUrl, ...headers },
  });
}

Deno.test("SIGNUP_LIMIT_PER_HOUR: the next sign-up from the address is 429 with Retry-After, creating nothing", async () => {
  await withServer(async (server) => {
    for (let i = 0; i < 3; i++) assert.equal((await signupWith(server.baseUrl)).status, 201);
    const before = await userCount(server.db.sql);
    const refused = await signupWith(server.baseUrl);
    assertError(refused, 429, "too_many_requests");
    assert.equal(refused.headers.getSetCookie().length, 0);
    const retryAfter = Number(refused.headers.get("retry-after"));
    assert.ok(retryAfter > 3500 && retryAfter <= 3600, `Retry-After ${retryAfter}`);
    assert.equal(await userCount(server.db.sql), before);
    // The HTML form is limited too, and shows the form again with the reason.
    const form = await send(server.baseUrl, "POST", "/signup", {
      body: new URLSearchParams({ email: "form@example.com", password: PASSWORD }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", origin: server.baseUrl },
    });
    assert.equal(form.status, 429);
    assert.ok(Number(form.headers.get("retry-after")) > 0);
    assert.match(String(form.json), /Too many sign-ups/);
    assert.equal(await userCount(server.db.sql), before);
    // An hour later the address may sign up again.
    await server.db.sql`update app.signup_log set signed_up_at = signed_up_at - interval '1 hour'`;
    assert.equal((await signupWith(server.baseUrl)).status, 201);
  }, { SIGNUP_LIMIT_PER_HOUR: "3" });
});

Deno.test("SIGNUP_LIMIT_PER_HOUR holds for sign-ups that arrive together", async () => {
  await withServer(async (server) => {
    const results = await Promise.all(
      Array.from({ length: 12 }, () => signupWith(server.baseUrl)),
    );
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [201, 201, 201, 201, 429, 429, 429, 429, 429, 429, 429, 429]);
    assert.equal(await userCount(server.db.sql), 4);
  }, { SIGNUP_LIMIT_PER_HOUR: "4" });
});

Deno.test("TRUST_PROXY=off: X-Forwarded-For is ignored, the socket's address is limited", async () => {
  await withServer(async (server) => {
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const result = await signupWith(server.baseUrl, { "x-forwarded-for": `203.0.113.${i}` });
      statuses.push(result.status);
    }
    assert.deepEqual(statuses, [201, 201, 429, 429]);
    const rows = await server.db.sql<{ address: string }[]>`
      select distinct host(address) as address from app.signup_log`;
    assert.deepEqual(rows.map((r) => r.address), ["127.0.0.1"]);
  }, { SIGNUP_LIMIT_PER_HOUR: "2" });
});

Deno.test("TRUST_PROXY=on: the last hop of X-Forwarded-For is the client address", async () => {
  await withServer(async (server) => {
    const via = (chain: string) => signupWith(server.baseUrl, { "x-forwarded-for": chain });
    // The client may write what it likes in front; the proxy appends the address it saw.
    assert.equal((await via("198.51.100.7, 203.0.113.5")).status, 201);
    assert.equal((await via("198.51.100.8, 203.0.113.5")).status, 201);
    assertError(await via("198.51.100.9,203.0.113.5"), 429, "too_many_requests");
    assert.equal((await via("203.0.113.6")).status, 201, "another client, its own limit");
    assert.equal((await via("2001:db8::1")).status, 201);
    const rows = await server.db.sql<{ address: string; n: number }[]>`
      select host(address) as address, count(*)::int as n from app.signup_log
       group by address order by address`;
    assert.deepEqual(rows.map((r) => ({ ...r })), [
      { address: "2001:db8::1", n: 1 },
      { address: "203.0.113.5", n: 2 },
      { address: "203.0.113.6", n: 1 },
    ]);
  }, { SIGNUP_LIMIT_PER_HOUR: "2", TRUST_PROXY: "on" });
});

Deno.test("SIGNUP_LIMIT_PER_HOUR=0 does not limit sign-ups", async () => {
  await withServer(async (server) => {
    for (let i = 0; i < 25; i++) assert.equal((await signupWith(server.baseUrl)).status, 201);
  }, { SIGNUP_LIMIT_PER_HOUR: "0" });
});

Deno.test("password hashing is bounded: a burst of long-password logins gets 503 with Retry-After, not a queue", async () => {
  await withServer(async (server) => {
    const long = "x".repeat(1024);
    const results = await loginBurst(
      server.baseUrl,
      Array.from({ length: 300 }, (_, i) => ({ email: `burst${i}@example.com`, password: long })),
    );
    const busy = results.filter((r) => r.status === 503);
    assert.ok(busy.length > 0, "no request was turned away");
    for (const result of busy) {
      assertError(result, 503, "unavailable");
      assert.ok(Number(result.headers.get("retry-after")) > 0, "Retry-After");
    }
    assert.ok(results.every((r) => r.status === 401 || r.status === 503));
    // A request turned away checked no password, so it does not count towards the email's limit.
    const turnedAway = results.findIndex((r) => r.status === 503);
    const [row] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from app.login_failures where email = ${`burst${turnedAway}@example.com`}`;
    assert.equal(row.n, 0);
  });
});
