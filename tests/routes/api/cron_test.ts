// docs/api.md#the-scheduler-endpoint: /api/cron/daily with the bearer secret or Basic credentials.
import assert from "node:assert/strict";
import { insertUser } from "../../helpers/db.ts";
import { assertError, send, withApp, withServer } from "../../helpers/http.ts";

const SECRET = "cron-secret-for-tests-0123456789";
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
const basic = (user: string, password: string) => ({
  authorization: `Basic ${btoa(`${user}:${password}`)}`,
});

type Run = { expired: number; granted: number; durationMs: number };

function assertRun(result: { status: number; json: unknown }): Run {
  assert.equal(result.status, 200, JSON.stringify(result.json));
  const run = result.json as Run;
  assert.deepEqual(Object.keys(run).sort(), ["durationMs", "expired", "granted"]);
  for (const value of Object.values(run)) assert.ok(Number.isInteger(value) && value >= 0);
  return run;
}

Deno.test("cron: 401 without or with wrong credentials, and nothing runs", async () => {
  await withApp(async (server) => {
    await insertUser(server.db.sql);
    const attempts: Record<string, string>[] = [
      {},
      bearer("wrong"),
      bearer(`${SECRET}x`),
      bearer(SECRET.slice(0, -1)),
      bearer(""),
      { authorization: SECRET },
      { authorization: `Token ${SECRET}` },
      basic("cron", SECRET),
    ];
    for (const headers of attempts) {
      for (const method of ["GET", "POST"]) {
        const result = await send(server.baseUrl, method, "/api/cron/daily", { headers });
        assertError(result, 401, "unauthorized");
      }
    }
    const [runs] = await server.db.sql<{ n: number }[]>`
      select count(*)::int as n from credits.daily_runs`;
    assert.equal(runs.n, 0);
  }, { CRON_SECRET: SECRET });
});

Deno.test("cron: GET and POST with the bearer run the daily job and report counts", async () => {
  await withApp(async (server) => {
    const sql = server.db.sql;
    const users = [await insertUser(sql), await insertUser(sql), await insertUser(sql)];
    await sql`select credits.grant(${
      users[0]
    }, 5, 'bonus', 'soon-gone', now() + interval '1 second')`;
    await sql`select pg_sleep(1.1)`;
    const first = assertRun(
      await send(server.baseUrl, "POST", "/api/cron/daily", { headers: bearer(SECRET) }),
    );
    assert.deepEqual({ expired: first.expired, granted: first.granted }, {
      expired: 1,
      granted: 3,
    });
    const again = assertRun(
      await send(server.baseUrl, "GET", "/api/cron/daily", { headers: bearer(SECRET) }),
    );
    assert.deepEqual({ expired: again.expired, granted: again.granted }, {
      expired: 0,
      granted: 0,
    });
    const [runs] = await sql<{ n: number }[]>`select count(*)::int as n from credits.daily_runs`;
    assert.equal(runs.n, 2);
    // The bearer scheme name is case-insensitive, as RFC 9110 says.
    assertRun(
      await send(server.baseUrl, "POST", "/api/cron/daily", {
        headers: { authorization: `bearer ${SECRET}` },
      }),
    );
  }, { CRON_SECRET: SECRET });
});

Deno.test("cron: with CRON_SECRET unset the endpoint answers 401 to everyone", async () => {
  await withApp(async (server) => {
    for (
      const headers of [{}, bearer(""), bearer("undefined"), bearer(SECRET), basic("", "")]
    ) {
      assertError(
        await send(server.baseUrl, "POST", "/api/cron/daily", { headers }),
        401,
        "unauthorized",
      );
    }
  });
});

Deno.test("cron: Basic credentials work when configured, and only the right pair", async () => {
  await withApp(async (server) => {
    assertRun(
      await send(server.baseUrl, "GET", "/api/cron/daily", { headers: basic("cron-job", "pa:ss") }),
    );
    assertRun(
      await send(server.baseUrl, "POST", "/api/cron/daily", { headers: bearer(SECRET) }),
    );
    for (
      const headers of [
        basic("cron-job", "wrong"),
        basic("someone", "pa:ss"),
        basic("cron-job", "pa:ss "),
        { authorization: "Basic not-base64!!" },
        { authorization: "Basic" },
      ]
    ) {
      assertError(
        await send(server.baseUrl, "POST", "/api/cron/daily", { headers }),
        401,
        "unauthorized",
      );
    }
  }, { CRON_SECRET: SECRET, CRON_JOBS_USERNAME: "cron-job", CRON_JOBS_PASSWORD: "pa:ss" });
});

Deno.test("cron: Basic alone (no CRON_SECRET) works, and no bearer is accepted", async () => {
  await withApp(async (server) => {
    assertRun(
      await send(server.baseUrl, "POST", "/api/cron/daily", { headers: basic("u", "p") }),
    );
    assertError(
      await send(server.baseUrl, "POST", "/api/cron/daily", { headers: bearer("p") }),
      401,
      "unauthorized",
    );
  }, { CRON_JOBS_USERNAME: "u", CRON_JOBS_PASSWORD: "p" });
});

Deno.test("cron: concurrent runs never grant twice", async () => {
  await withServer(async (server) => {
    const sql = server.db.sql;
    const users = await Promise.all(Array.from({ length: 40 }, () => insertUser(sql)));
    const runs = await Promise.all(
      Array.from(
        { length: 4 },
        (_, i) =>
          send(server.baseUrl, i % 2 ? "GET" : "POST", "/api/cron/daily", {
            headers: bearer(SECRET),
          }),
      ),
    );
    const granted = runs.map((run) => assertRun(run).granted);
    assert.equal(granted.reduce((a, b) => a + b, 0), users.length, JSON.stringify(granted));
    const [check] = await sql<{ grants: number; users: number }[]>`
      select count(*)::int as grants, count(distinct user_id)::int as users
        from credits.grants where kind = 'free_monthly'`;
    assert.deepEqual(check, { grants: users.length, users: users.length });
  }, { CRON_SECRET: SECRET });
});
