// deno task api-key create --name NAME [--scope read]: makes a key of the server-to-server API
// (docs/api.md#keys) on DATABASE_URL or the embedded server, as db:migrate does. Without --scope
// the key reads and writes; `--scope read` makes a read-only one. The key is printed once, alone
// on stdout (so `KEY=$(deno task api-key create --name x)` captures it); the note that it is shown
// only once, and any error, go to stderr. Bad arguments exit 1 with the usage.
import { connect, sqlState } from "../db/client.ts";
import { openDatabase } from "../db/database.ts";
import { ApiKeyName, type ApiKeyScope, createApiKey } from "../utils/api_keys.ts";

const USAGE = "usage: deno task api-key create --name NAME [--scope read | --scope read,write]";

class UsageError extends Error {}

type Request = { name: string; scopes: ApiKeyScope[] };

const SCOPES: Record<string, ApiKeyScope[]> = {
  "read": ["read"],
  "write": ["read", "write"],
  "read,write": ["read", "write"],
};

/** The command's arguments (`--name NAME` or `--name=NAME`, likewise --scope), or a UsageError. */
export function parseArgs(args: string[]): Request {
  if (args[0] !== "create") throw new UsageError(USAGE);
  const options = new Map<string, string>();
  for (let i = 1; i < args.length; i++) {
    const match = /^--(name|scope)(?:=(.*))?$/s.exec(args[i]);
    if (!match) throw new UsageError(`unexpected argument ${JSON.stringify(args[i])}\n${USAGE}`);
    const [, option, inline] = match;
    const value = inline ?? args[++i];
    if (value === undefined) throw new UsageError(`--${option} needs a value\n${USAGE}`);
    if (options.has(option)) throw new UsageError(`--${option} given twice\n${USAGE}`);
    options.set(option, value);
  }
  const name = ApiKeyName.safeParse(options.get("name") ?? "");
  if (!name.success) {
    throw new UsageError(`--name: ${name.error.issues[0].message}\n${USAGE}`);
  }
  const scope = options.get("scope") ?? "read,write";
  const scopes = SCOPES[scope.replaceAll(" ", "")];
  if (!scopes) {
    throw new UsageError(`--scope is read or read,write, not ${JSON.stringify(scope)}\n${USAGE}`);
  }
  return { name: name.data, scopes };
}

function describe(error: unknown): string {
  switch (sqlState(error)) {
    case "3F000": // no such schema
    case "42P01": // no such table
    case "42883": // no such function
    case "42703": // no such column
    case "42704": // no such type (the table's row type)
      return "the database is not migrated: run `deno task db:migrate` first";
  }
  const message = error instanceof Error ? error.message : String(error);
  // A connection error may repeat the URL; never print a password.
  return message.replaceAll(/\/\/[^@/\s]*@/g, "//***@").split("\n")[0];
}

async function main(): Promise<number> {
  let request;
  try {
    request = parseArgs(Deno.args);
  } catch (error) {
    console.error(`api-key: ${(error as Error).message}`);
    return 1;
  }
  let target;
  try {
    target = await openDatabase(Deno.env.get("DATABASE_URL") || undefined);
  } catch (error) {
    console.error(`api-key: database: ${describe(error)}`);
    return 1;
  }
  const sql = connect(target.url, { max: 1 });
  try {
    const created = await createApiKey(sql, { ...request, createdBy: null });
    console.log(created.key);
    console.error(
      `api-key: made key ${created.id} "${created.name}" (${
        created.scopes.join(", ")
      }). It is shown only this once: store it now.`,
    );
    return 0;
  } catch (error) {
    console.error(`api-key: ${describe(error)}`);
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
    await target.stop();
  }
}

if (import.meta.main) Deno.exit(await main());
