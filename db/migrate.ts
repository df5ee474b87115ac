// Applies dbmate migrations, then reloads every stored function from sql/. Both happen under one
// session advisory lock, so servers starting together migrate one after the other.
import { connect } from "./client.ts";

const ROOT = new URL("..", import.meta.url).pathname;
export const MIGRATIONS_DIR = `${ROOT}db/migrations`;
export const SQL_DIR = `${ROOT}sql`;
const MIGRATE_LOCK = 7461021000;

/** dbmate wants sslmode=disable for servers without TLS; local ones never have it here. */
export function dbmateUrl(url: string): string {
  const parsed = new URL(url);
  const local = ["localhost", "127.0.0.1", "[::1]", ""].includes(parsed.hostname);
  if (local && !parsed.searchParams.has("sslmode")) parsed.searchParams.set("sslmode", "disable");
  return parsed.toString();
}

async function runDbmate(url: string): Promise<void> {
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "npm:dbmate@2.24.0",
      "--url",
      dbmateUrl(url),
      "--migrations-dir",
      MIGRATIONS_DIR,
      "--no-dump-schema",
      "up",
    ],
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const result = await command.output();
  if (!result.success) {
    const text = new TextDecoder().decode(result.stderr).trim() ||
      new TextDecoder().decode(result.stdout).trim();
    // dbmate prints the URL on some errors; never let a password reach a log.
    throw new Error(`dbmate failed: ${text.replaceAll(/\/\/[^@/]*@/g, "//***@")}`);
  }
}

/** The stored-procedure files, in load order. */
export function sqlFiles(): string[] {
  return [...Deno.readDirSync(SQL_DIR)]
    .filter((entry) => entry.isFile && entry.name.endsWith(".sql"))
    .map((entry) => entry.name)
    .sort();
}

/**
 * Drops every function and procedure in Tally's schemas and creates them again from sql/, in one
 * transaction: a changed signature never leaves an old overload behind, and callers see either
 * the old set or the new one.
 */
async function reloadFunctions(url: string): Promise<void> {
  const sql = connect(url, { max: 1 });
  try {
    await sql.begin(async (tx) => {
      // Files may refer to each other's functions in any order, as pg_dump's output does.
      await tx.unsafe("set local check_function_bodies = off");
      await tx.unsafe(`
        do $$
        declare r record;
        begin
          for r in
            select p.oid::regprocedure as signature, p.prokind
              from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname in ('app', 'credits', 'billing', 'api') and p.prokind in ('f', 'p')
          loop
            execute format('drop %s if exists %s cascade',
                           case r.prokind when 'p' then 'procedure' else 'function' end,
                           r.signature);
          end loop;
        end $$`);
      for (const file of sqlFiles()) {
        const text = await Deno.readTextFile(`${SQL_DIR}/${file}`);
        try {
          await tx.unsafe(text);
        } catch (error) {
          throw new Error(`loading sql/${file}: ${error instanceof Error ? error.message : error}`);
        }
      }
    });
  } finally {
    await sql.end();
  }
}

export async function migrate(url: string): Promise<void> {
  const lockHolder = connect(url, { max: 1 });
  try {
    await lockHolder`select pg_advisory_lock(${MIGRATE_LOCK})`;
    await runDbmate(url);
    await reloadFunctions(url);
    await lockHolder`select pg_advisory_unlock(${MIGRATE_LOCK})`;
  } finally {
    await lockHolder.end();
  }
}
