// `deno task api-key create --name NAME [--scope read]` as a real process against a test
// database: the key alone on stdout, once; the note on stderr; only its hash stored; bad
// arguments exit 1 with a clear message and make nothing.
import assert from "node:assert/strict";
import { withDatabase } from "../helpers/db.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** `deno task api-key ARGS` against the database; the "Task ..." lines dropped from stderr. */
async function apiKeyTask(
  databaseUrl: string,
  ...args: string[]
): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "api-key", ...args],
    cwd: ROOT,
    env: { DATABASE_URL: databaseUrl, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = (bytes: Uint8Array) =>
    new TextDecoder().decode(bytes).split("\n").filter((line) => line && !line.startsWith("Task "));
  return { code: output.code, stdout: lines(output.stdout), stderr: lines(output.stderr) };
}

const sha256Hex = async (text: string) =>
  Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");

Deno.test("api-key create: prints the key once, alone on stdout, and stores only its hash", async () => {
  await withDatabase(async ({ sql, url }) => {
    const made = await apiKeyTask(url, "create", "--name", "Nightly export");
    assert.equal(made.code, 0, made.stderr.join("\n"));
    assert.equal(made.stdout.length, 1, made.stdout.join("\n"));
    const key = made.stdout[0];
    assert.match(key, /^tally_sk_[A-Za-z0-9_-]{43}$/);
    assert.equal(made.stderr.length, 1);
    assert.match(made.stderr[0], /shown only this once/);
    assert.ok(!made.stderr[0].includes(key));

    const [row] = await sql<
      { name: string; scopes: string[]; hash: string; prefix: string; created_by: null }[]
    >`select name, scopes, encode(key_hash, 'hex') as hash, prefix, created_by from app.api_keys`;
    assert.deepEqual(row, {
      name: "Nightly export",
      scopes: ["read", "write"],
      hash: await sha256Hex(key),
      prefix: key.slice(0, 13),
      created_by: null,
    });

    const reader = await apiKeyTask(url, "create", "--name=Dashboards", "--scope", "read");
    assert.equal(reader.code, 0, reader.stderr.join("\n"));
    assert.notEqual(reader.stdout[0], key);
    const [scopes] = await sql<{ scopes: string[] }[]>`
      select scopes from app.api_keys where name = 'Dashboards'`;
    assert.deepEqual(scopes.scopes, ["read"]);
  });
});

Deno.test("api-key: bad arguments exit 1 with a clear message and make no key", async () => {
  await withDatabase(async ({ sql, url }) => {
    const cases: [string[], RegExp][] = [
      [[], /usage: deno task api-key create --name NAME/],
      [["list"], /usage:/],
      [["create"], /--name: a name is required/],
      [["create", "--name"], /--name needs a value/],
      [["create", "--name", "   "], /--name: a name is required/],
      [["create", "--name", "x".repeat(101)], /at most 100 characters/],
      [["create", "--name", "k", "--scope", "admin"], /--scope is read or read,write/],
      [["create", "--name", "k", "--scope"], /--scope needs a value/],
      [["create", "--name", "a", "--name", "b"], /--name given twice/],
      [["create", "--name", "k", "extra"], /unexpected argument "extra"/],
    ];
    for (const [args, message] of cases) {
      const result = await apiKeyTask(url, ...args);
      assert.equal(result.code, 1, JSON.stringify(args));
      assert.deepEqual(result.stdout, [], JSON.stringify(args));
      assert.match(result.stderr.join("\n"), message, JSON.stringify(args));
    }
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from app.api_keys`;
    assert.equal(row.n, 0);
  });
});

Deno.test("api-key: an unmigrated database is named as such, exit 1", async () => {
  await withDatabase(async ({ sql, url }) => {
    await sql`drop table app.api_keys cascade`;
    const result = await apiKeyTask(url, "create", "--name", "k");
    assert.equal(result.code, 1);
    assert.deepEqual(result.stdout, []);
    assert.match(result.stderr.join("\n"), /not migrated: run `deno task db:migrate`/);
  });
});
