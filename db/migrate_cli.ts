// deno task db:migrate: migrations, then the stored procedures, on DATABASE_URL or the embedded
// server.
import { openDatabase } from "./database.ts";
import { migrate } from "./migrate.ts";

const target = await openDatabase(Deno.env.get("DATABASE_URL") || undefined);
try {
  await migrate(target.url);
  console.log(`migrated ${target.description}`);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  Deno.exitCode = 1;
} finally {
  await target.stop();
}
