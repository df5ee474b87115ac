// The daily job's scheduler (contract section 2, SCHEDULER): pg_cron inside the database when it
// can be had, else Deno.cron in this process. Both call credits.run_daily, which is safe to run
// twice or concurrently.
import type { Sql } from "../db/client.ts";
import type { Config } from "./config.ts";

export const DAILY_SCHEDULE = "0 2 * * *"; // 02:00 UTC
export const PG_CRON_JOB = "tally-daily";

export type SchedulerInUse = "pg_cron" | "deno" | "off";

/** Creates pg_cron and (re)schedules the job; false when pg_cron cannot be used here. */
export async function schedulePgCron(sql: Sql): Promise<boolean> {
  const [preload] = await sql<{ loaded: boolean }[]>`
    select 'pg_cron' = any (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))
           as loaded`;
  if (!preload.loaded) return false;
  try {
    await sql`create extension if not exists pg_cron`;
    // cron.schedule with a job name replaces that job, so every start leaves exactly one.
    await sql`select cron.schedule(${PG_CRON_JOB}, ${DAILY_SCHEDULE}, 'CALL credits.run_daily()')`;
    return true;
  } catch {
    return false;
  }
}

export async function startScheduler(sql: Sql, config: Config): Promise<SchedulerInUse> {
  if (config.scheduler === "off") return "off";
  if (config.scheduler === "pg_cron" || config.scheduler === "auto") {
    if (await schedulePgCron(sql)) return "pg_cron";
    if (config.scheduler === "pg_cron") {
      throw new Error(
        "invalid setting SCHEDULER: pg_cron is not available in this database " +
          "(it must be in shared_preload_libraries and cron.database_name must name this database)",
      );
    }
  }
  Deno.cron("tally daily credits", DAILY_SCHEDULE, async () => {
    try {
      await sql`call credits.run_daily()`;
    } catch (error) {
      console.error("daily run failed:", error instanceof Error ? error.message : error);
    }
  });
  return "deno";
}
