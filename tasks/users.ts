// deno task users verify EMAIL: marks the account of that address verified (an operator's
// command on the server; the emailed link does the same), on DATABASE_URL or the embedded server,
// as db:migrate does. Prints one line; an unknown email, bad usage or an unmigrated database
// print one line on stderr and exit non-zero.
import { z } from "zod";
import { connect, sqlState } from "../db/client.ts";
import { openDatabase } from "../db/database.ts";

const USAGE = "usage: deno task users verify EMAIL";
const Email = z.string().trim().toLowerCase().pipe(z.email("not a valid email address"));

class UsageError extends Error {}

/** The command's arguments, or a UsageError saying what is wrong. */
function parseArgs(args: string[]): { command: "verify"; email: string } {
  if (args.length !== 2 || args[0] !== "verify") throw new UsageError(USAGE);
  const email = Email.safeParse(args[1]);
  if (!email.success) {
    throw new UsageError(`${JSON.stringify(args[1])} is ${email.error.issues[0].message}`);
  }
  return { command: "verify", email: email.data };
}

function describe(error: unknown): string {
  switch (sqlState(error)) {
    case "23503":
      return (error as Error).message;
    case "3F000": // no such schema
    case "42P01": // no such table
    case "42883": // no such function
    case "42703": // no such column
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
    console.error(`users: ${(error as Error).message}`);
    return 2;
  }
  let target;
  try {
    target = await openDatabase(Deno.env.get("DATABASE_URL") || undefined);
  } catch (error) {
    console.error(`users: database: ${describe(error)}`);
    return 1;
  }
  const sql = connect(target.url, { max: 1 });
  try {
    const [row] = await sql<{ email: string; verified_at: Date; already: boolean }[]>`
      select email, verified_at, already from app.verify_email(${request.email})`;
    console.log(
      row.already
        ? `${row.email} was already verified (${row.verified_at.toISOString()})`
        : `verified ${row.email}`,
    );
    return 0;
  } catch (error) {
    console.error(`users: ${describe(error)}`);
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
    await target.stop();
  }
}

Deno.exit(await main());
