// A fresh, migrated database per test, cloned from the template that tests/run.ts prepared.
import { connect, type Sql } from "../../db/client.ts";

export type TestDatabase = {
  url: string;
  sql: Sql;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
};

function env(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`${name} is unset: run the tests with \`deno task test\``);
  return value;
}

function urlFor(database: string): string {
  const url = new URL(env("TALLY_TEST_SERVER_URL"));
  url.pathname = `/${database}`;
  return url.toString();
}

let counter = 0;

/** Creates a database from the template; the name carries the runner's PID for clean-up. */
export async function freshDatabase(options: { max?: number } = {}): Promise<TestDatabase> {
  const runner = env("TALLY_TEST_TEMPLATE").split("_")[2];
  const name = `tally_t_${runner}_${Deno.pid}x${++counter}x${crypto.randomUUID().slice(0, 8)}`;
  const admin = connect(env("TALLY_TEST_SERVER_URL"), { max: 1 });
  try {
    // A template may be copied only while nobody is connected to it; retry if a copy races.
    for (let attempt = 0;; attempt++) {
      try {
        await admin.unsafe(`create database "${name}" template "${env("TALLY_TEST_TEMPLATE")}"`);
        break;
      } catch (error) {
        if (attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } finally {
    await admin.end();
  }
  const url = urlFor(name);
  const sql = connect(url, { max: options.max ?? 20 });
  return {
    url,
    sql,
    drop: async () => {
      await sql.end({ timeout: 5 });
      const cleaner = connect(env("TALLY_TEST_SERVER_URL"), { max: 1 });
      try {
        await cleaner.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await cleaner.end();
      }
    },
  };
}

/** Runs fn with a fresh database and drops it afterwards, whatever happens. */
export async function withDatabase<T>(
  fn: (db: TestDatabase) => Promise<T>,
  options: { max?: number } = {},
): Promise<T> {
  const db = await freshDatabase(options);
  try {
    return await fn(db);
  } finally {
    await db.drop();
  }
}

/** Inserts a user with plain SQL (no sign-up grants) and returns its id. */
export async function insertUser(sql: Sql, email?: string): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    insert into app.users (email) values (${email ?? `${crypto.randomUUID()}@test.local`})
    returning id`;
  return row.id;
}

/** Marks the address verified, as `deno task users verify EMAIL` does (app.verify_email). */
export async function verifyEmail(sql: Sql, email: string): Promise<void> {
  await sql`select app.verify_email(${email})`;
}
