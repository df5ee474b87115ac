// The daily job's scheduler (docs/configuration.md#the-scheduler): pg_cron inside the database when
// it can be had, else Deno.cron in this process. Both call credits.run_daily, which is safe to run
// twice or concurrently, so a start that briefly overlaps an old scheduler does no harm.
import type { Sql } from "../db/client.ts";
import type { Config } from "./config.ts";
import { log } from "./log.ts";

export const DAILY_SCHEDULE = "0 2 * * *"; // 02:00; pg_cron and Deno.cron both read it in UTC
export const DAILY_COMMAND = "CALL credits.run_daily()";
export const PG_CRON_JOB = "tally-daily";
export const DENO_CRON_NAME = "tally daily credits";

export type SchedulerInUse = "pg_cron" | "deno" | "off";

/** Registers a job with Deno.cron; injectable so tests can check it without a live cron. */
export type RegisterCron = (name: string, schedule: string, run: () => Promise<void>) => void;

const registerDenoCron: RegisterCron = (name, schedule, run) => {
  Deno.cron(name, schedule, run);
};

export type PgCronProbe = { available: true } | { available: false; reason: string };

/**
 * Creates the pg_cron extension in this database and (re)schedules the daily job. pg_cron only
 * lets itself be created in the database named by cron.database_name, and only when the server
 * preloads it, so success here means the job will run against Tally's tables.
 */
export async function schedulePgCron(sql: Sql): Promise<PgCronProbe> {
  const [server] = await sql<{ preload: string; cron_database: string | null; here: string }[]>`
    select current_setting('shared_preload_libraries') as preload,
           current_setting('cron.database_name', true) as cron_database,
           current_database() as here`;
  const preloaded = server.preload.split(",").map((name) => name.trim()).includes("pg_cron");
  if (!preloaded) {
    return { available: false, reason: "pg_cron is not in the server's shared_preload_libraries" };
  }
  if (server.cron_database !== null && server.cron_database !== server.here) {
    return {
      available: false,
      reason: `cron.database_name is "${server.cron_database}", not this database ` +
        `("${server.here}")`,
    };
  }
  try {
    await sql`create extension if not exists pg_cron`;
    // A named cron.schedule replaces the job of that name, so every start leaves exactly one.
    await sql`select cron.schedule(${PG_CRON_JOB}, ${DAILY_SCHEDULE}, ${DAILY_COMMAND})`;
    return { available: true };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { available: false, reason: `pg_cron could not be set up: ${reason}` };
  }
}

/**
 * Removes the pg_cron job a previous start may have left, so that SCHEDULER=deno or off is what
 * actually runs. Best effort: where pg_cron is not installed there is nothing to remove.
 */
export async function unschedulePgCron(sql: Sql): Promise<void> {
  try {
    const [installed] = await sql<{ present: boolean }[]>`
      select exists (select 1 from pg_extension where extname = 'pg_cron') as present`;
    if (!installed.present) return;
    await sql`select cron.unschedule(jobid) from cron.job where jobname = ${PG_CRON_JOB}`;
  } catch (error) {
    // A leftover job only repeats an idempotent run; it is no reason to refuse to start.
    log("warn", `could not remove the pg_cron job ${PG_CRON_JOB}`, {
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/**
 * Starts the scheduler that SCHEDULER asks for and says which one runs. A forced pg_cron that
 * cannot be had throws a one-line error naming the setting.
 */
export async function startScheduler(
  sql: Sql,
  config: Pick<Config, "scheduler">,
  registerCron: RegisterCron = registerDenoCron,
): Promise<SchedulerInUse> {
  const mode = config.scheduler;
  if (mode === "pg_cron" || mode === "auto") {
    const probe = await schedulePgCron(sql);
    if (probe.available) return "pg_cron";
    if (mode === "pg_cron") {
      throw new Error(`invalid setting SCHEDULER: pg_cron is not available (${probe.reason})`);
    }
  }
  await unschedulePgCron(sql);
  if (mode === "off") return "off";
  registerCron(DENO_CRON_NAME, DAILY_SCHEDULE, async () => {
    try {
      await sql.unsafe(DAILY_COMMAND);
    } catch (error) {
      // The next day's run catches up: every grant it makes is keyed by its period.
      log("error", "daily run failed", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  });
  return "deno";
}
