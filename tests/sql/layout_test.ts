// The shape of sql/: files small enough to read, and each key format and advisory lock written
// in its one home (sql/keys.sql, sql/locks.sql), so that a key never has two spellings.
import assert from "node:assert/strict";
import { SQL_DIR, sqlFiles } from "../../db/migrate.ts";

const MAX_LINES = 400;
// Every prefix a stored key or reference starts with (sql/keys.sql).
const KEY_PREFIXES = [
  "signup_gift",
  "free_monthly",
  "daily_signin",
  "subscription_monthly",
  "lifetime_monthly",
  "subscription_period",
  "trial",
  "upgrade",
  "package",
  "adjustment",
  "api",
  "refund",
  "dispute",
  "customer",
  "subscription",
  "payment",
];

/** The file's lines without their `--` comments, numbered from 1. */
function codeLines(file: string): { line: number; code: string }[] {
  return Deno.readTextFileSync(`${SQL_DIR}/${file}`).split("\n")
    .map((text, index) => ({ line: index + 1, code: text.replace(/--.*$/, "") }));
}

Deno.test("no file under sql/ is longer than 400 lines", () => {
  const long = sqlFiles()
    .map((file) => ({
      file,
      lines: Deno.readTextFileSync(`${SQL_DIR}/${file}`).split("\n").length,
    }))
    .filter(({ lines }) => lines > MAX_LINES + 1) // a final newline makes an empty last element
    .map(({ file, lines }) => `${file}: ${lines - 1} lines`);
  assert.deepEqual(long, []);
});

Deno.test("key prefixes are spelt only in sql/keys.sql", () => {
  const literal = new RegExp(`'(${KEY_PREFIXES.join("|")}):`);
  const found = sqlFiles().filter((file) => file !== "keys.sql").flatMap((file) =>
    codeLines(file).filter(({ code }) => literal.test(code))
      .map(({ line, code }) => `${file}:${line}: ${code.trim()}`)
  );
  assert.deepEqual(found, []);
});

Deno.test("advisory locks are taken and numbered only in sql/locks.sql", () => {
  const lock = /pg_advisory|pg_try_advisory|7461021\d{3}/;
  const found = sqlFiles().filter((file) => file !== "locks.sql").flatMap((file) =>
    codeLines(file).filter(({ code }) => lock.test(code))
      .map(({ line, code }) => `${file}:${line}: ${code.trim()}`)
  );
  assert.deepEqual(found, []);
});
