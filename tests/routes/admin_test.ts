// The admin area over real HTTP: who is an admin (an ADMIN_EMAILS address, once verified with
// `deno task users verify EMAIL`, run here as a real process), what the admin pages show of
// verification, flash messages that only the server writes, and the adjustment form's strict
// amount and idempotency key.
import assert from "node:assert/strict";
import { connect } from "../../db/client.ts";
import { verifyEmail } from "../helpers/db.ts";
import { ledgerState, signedUp, withServer } from "../helpers/http.ts";
import { Client, type TestServer } from "../helpers/server.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const ADMIN = "boss@test.local";
// Spaces and capitals as an operator may type them.
const ADMIN_ENV = { ADMIN_EMAILS: " Boss@Test.Local , ops@test.local" };

/** `deno task users ARGS` as a process against the test database; the "Task ..." line dropped. */
async function usersTask(
  databaseUrl: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string[] }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "users", ...args],
    cwd: ROOT,
    env: { DATABASE_URL: databaseUrl, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
  return {
    code: output.code,
    stdout: decode(output.stdout),
    stderr: decode(output.stderr).split("\n").filter((line) => line && !line.startsWith("Task ")),
  };
}

type Reply = { status: number; location: string | null; html: string };

/** A plain request as the browser sends it (same origin, the session cookie), no redirects. */
async function browse(
  client: Client,
  method: "GET" | "POST",
  path: string,
  form?: Record<string, string>,
): Promise<Reply> {
  const response = await fetch(`${client.baseUrl}${path}`, {
    method,
    redirect: "manual",
    headers: {
      ...(client.cookie ? { cookie: client.cookie } : {}),
      ...(form
        ? { origin: client.baseUrl, "content-type": "application/x-www-form-urlencoded" }
        : {}),
    },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  return {
    status: response.status,
    location: response.headers.get("location"),
    html: await response.text(),
  };
}

async function verifiedAdmin(server: TestServer): Promise<Client> {
  const { client } = await signedUp(server, ADMIN);
  await verifyEmail(server.db.sql, ADMIN);
  return client;
}

Deno.test("an ADMIN_EMAILS address is no admin until `deno task users verify` verifies it", async () => {
  await withServer(async (server) => {
    // Whoever signs up first with the address, in any spelling, gets nothing from it yet.
    const { client } = await signedUp(server, "  BOSS@test.Local ");
    assert.equal((await browse(client, "GET", "/admin")).status, 404);
    assert.equal((await client.request("GET", "/api/admin/webhooks")).status, 404);
    assert.doesNotMatch((await browse(client, "GET", "/dashboard")).html, /href="\/admin"/);

    const verify = await usersTask(server.db.url, "verify", "Boss@Test.local");
    assert.equal(verify.code, 0, verify.stderr.join("\n"));
    assert.match(verify.stdout, /^verified boss@test\.local$/);

    // The same session now has the admin pages, the admin API and the navigation link.
    assert.equal((await browse(client, "GET", "/admin")).status, 200);
    assert.equal((await client.request("GET", "/api/admin/webhooks")).status, 200);
    assert.match((await browse(client, "GET", "/dashboard")).html, /href="\/admin"/);

    const [{ at }] = await server.db.sql<{ at: Date }[]>`
      select email_verified_at as at from app.users where email = ${ADMIN}`;
    const again = await usersTask(server.db.url, "verify", ADMIN);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already verified/);
    const [{ at: still }] = await server.db.sql<{ at: Date }[]>`
      select email_verified_at as at from app.users where email = ${ADMIN}`;
    assert.equal(still.getTime(), at.getTime(), "the first verification is kept");
  }, ADMIN_ENV);
});

Deno.test("`deno task users`: one clear line and a non-zero exit for an unknown email or bad usage", async () => {
  await withServer(async (server) => {
    await signedUp(server, ADMIN);
    const cases: [string[], RegExp][] = [
      [["verify", "nobody@test.local"], /no account with the email nobody@test\.local/],
      [["verify", "not an email"], /not a valid email address/],
      [["verify"], /usage: deno task users verify EMAIL/],
      [["promote", ADMIN], /usage: deno task users verify EMAIL/],
      [["verify", ADMIN, "extra"], /usage: deno task users verify EMAIL/],
    ];
    for (const [args, expected] of cases) {
      const result = await usersTask(server.db.url, ...args);
      assert.notEqual(result.code, 0, args.join(" "));
      assert.equal(result.stderr.length, 1, `one line for ${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stderr[0], expected);
    }
    const [{ verified }] = await server.db.sql<{ verified: number }[]>`
      select count(*)::int as verified from app.users where email_verified_at is not null`;
    assert.equal(verified, 0, "nothing was verified");
  }, ADMIN_ENV);
});

Deno.test("the admin pages show whether each user's email is verified", async () => {
  await withServer(async (server) => {
    const admin = await verifiedAdmin(server);
    const { userId, email } = await signedUp(server);
    const list = (await browse(admin, "GET", "/admin")).html;
    assert.match(list, new RegExp(`${email}</a></td><td[^>]*>not verified</td>`));
    assert.match(list, new RegExp(`${ADMIN}</a></td><td[^>]*>verified <time`));
    const userPage = async () => (await browse(admin, "GET", `/admin/users/${userId}`)).html;
    assert.match(await userPage(), /id="email-verified"[^>]*>Email not verified/);

    await verifyEmail(server.db.sql, email);
    assert.match(await userPage(), /id="email-verified"[^>]*>Email verified on <time/);
  }, ADMIN_ENV);
});

Deno.test("admin flash messages come from the server, never from the URL", async () => {
  await withServer(async (server) => {
    const admin = await verifiedAdmin(server);
    const { userId } = await signedUp(server);
    const crafted = "Your account is suspended: call +1 555 0100";
    for (const path of ["/admin", `/admin/users/${userId}`]) {
      const page = await browse(admin, "GET", `${path}?message=${encodeURIComponent(crafted)}`);
      assert.equal(page.status, 200);
      assert.ok(!page.html.includes("suspended"), `${path} shows the crafted text`);
      assert.ok(!page.html.includes('id="flash"'), `${path} shows a flash`);
    }

    const run = await browse(admin, "POST", "/admin/run-daily", {});
    assert.equal(run.status, 303);
    assert.equal(run.location, "/admin");
    const shown = await browse(admin, "GET", "/admin");
    assert.match(shown.html, /id="flash"[^]*Daily job done: 0 grants expired/);
    const again = await browse(admin, "GET", "/admin");
    assert.ok(!again.html.includes('id="flash"'), "a flash is shown once");

    // The message belongs to the session that acted: the admin's other session never sees it.
    const elsewhere = new Client(server.baseUrl);
    const login = await elsewhere.request("POST", "/api/auth/login", {
      email: ADMIN,
      password: "correct horse 1",
    });
    assert.equal(login.status, 200);
    const adjust = await browse(admin, "POST", `/admin/users/${userId}/adjust`, {
      amount: "5",
      reason: "Goodwill",
      key: crypto.randomUUID(),
    });
    assert.equal(adjust.status, 303);
    assert.equal(adjust.location, `/admin/users/${userId}`);
    const notMine = await browse(elsewhere, "GET", `/admin/users/${userId}`);
    assert.equal(notMine.status, 200);
    assert.ok(!notMine.html.includes('id="flash"'));
    const page = await browse(admin, "GET", `/admin/users/${userId}`);
    assert.match(page.html, /id="flash"[^]*Adjusted by \+5: the balance is now 105/);
  }, ADMIN_ENV);
});

Deno.test("the adjustment form takes digits only, and its key once, for one amount", async () => {
  await withServer(async (server) => {
    const admin = await verifiedAdmin(server);
    const { userId } = await signedUp(server);
    const sql = server.db.sql;
    const before = await ledgerState(sql, userId);
    const post = (amount: string, key = crypto.randomUUID()) =>
      browse(admin, "POST", `/admin/users/${userId}/adjust`, { amount, reason: "Goodwill", key });

    for (const amount of ["0x10", "1e3", "12.0", "1_000", "Infinity", "", "- 5", "0"]) {
      const refused = await post(amount);
      assert.equal(refused.status, 400, `amount ${JSON.stringify(amount)}`);
      assert.match(refused.html, /id="field-amount-error"/);
    }
    assert.deepEqual(await ledgerState(sql, userId), before);

    const key = crypto.randomUUID();
    assert.equal((await post("25", key)).status, 303);
    await browse(admin, "GET", `/admin/users/${userId}`); // shows (and so takes) its flash
    const after = await ledgerState(sql, userId);
    assert.equal(after.balance, before.balance + 25);

    // The same form sent again with another amount: refused, nothing changes, no false message.
    for (const amount of ["999", "-25"]) {
      const reused = await post(amount, key);
      assert.equal(reused.status, 409, amount);
      assert.match(reused.html, /id="field-amount-error"[^>]*>[^<]*already sent with 25/);
      assert.ok(!reused.html.includes("Adjusted by"));
      assert.deepEqual(await ledgerState(sql, userId), after);
    }
    const page = await browse(admin, "GET", `/admin/users/${userId}`);
    assert.ok(!page.html.includes("Adjusted by"), "no message about the refused adjustment");
    // The same amount again is the same adjustment: it answers as the first did.
    assert.equal((await post("25", key)).status, 303);
    assert.deepEqual(await ledgerState(sql, userId), after);
    // "+7" is a whole number too.
    assert.equal((await post("+7")).status, 303);
    assert.equal((await ledgerState(sql, userId)).balance, after.balance + 7);
  }, ADMIN_ENV);
});

Deno.test("the daily runs list shows each run's status, progress, batches and errors", async () => {
  await withServer(async (server) => {
    const admin = await verifiedAdmin(server);
    const sql = server.db.sql;
    await sql`
      insert into credits.daily_runs (run_at, trigger, status, users, users_done, batches_done,
                                      failed_batches, failed_users, errors, expired, granted,
                                      finished_at, duration_ms, batch_size)
      values ('2026-11-30T02:00:00Z', 'scheduler', 'degraded', 400, 400, 4, 1, 25,
              '[{"range": ["00000000-0000-0000-0000-0000000000a1",
                           "00000000-0000-0000-0000-0000000000b2"],
                 "users": 25, "error": "user is broken"}]',
              0, 375, now(), 1200, 100)`;
    await sql`
      insert into credits.daily_runs (run_at, trigger, status, users, users_done, batches_done,
                                      expired, granted, batch_size)
      values ('2026-12-01T02:00:00Z', 'http', 'running', 5000, 1000, 1, 0, 1000, 1000)`;
    const rowOf = (html: string, status: string) =>
      html.match(new RegExp(`<tr data-status="${status}">[^]*?</tr>`))?.[0] ?? "";

    // Nobody holds the run: the 'running' row is a run that died, shown as such.
    let html = (await browse(admin, "GET", "/admin")).html;
    assert.match(rowOf(html, "interrupted"), /1000 of 5000/);

    const runner = connect(server.db.url, { max: 1 });
    try {
      await runner`select credits.try_lock_daily_run()`;
      html = (await browse(admin, "GET", "/admin")).html;
    } finally {
      await runner.end();
    }
    const running = rowOf(html, "running");
    assert.match(running, /<td>running<\/td>/);
    assert.match(running, /1000 of 5000/);
    const degraded = rowOf(html, "degraded");
    assert.match(degraded, /400 of 400/);
    assert.match(degraded, /1 \(25 users\)/);
    assert.match(degraded, /<details><summary>1 errors<\/summary>/);
    assert.match(degraded, /4 batches of up to 100 users/);
    assert.match(degraded, /0000000000a1<\/code> to <code>[^<]*0000000000b2<\/code> \(25\):/);
    assert.match(degraded, /user is broken/);
  }, ADMIN_ENV);
});
