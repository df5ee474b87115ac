// The scheduler choice (SCHEDULER) against the real server: Deno.cron where pg_cron cannot be
// created, pg_cron where the server preloads it. The pg_cron tests need a server started with
// shared_preload_libraries=pg_cron; .ci/run starts one and sets TALLY_EXPECT_PG_CRON=1 so that
// they cannot be skipped there.
import assert from "node:assert/strict";
import { connect, type Sql } from "../../db/client.ts";
import { migrate } from "../../db/migrate.ts";
import { loadPlans, readPlansFile } from "../../utils/plans.ts";
import {
  DAILY_COMMAND,
  DAILY_SCHEDULE,
  DENO_CRON_NAME,
  PG_CRON_JOB,
  type RegisterCron,
  startScheduler,
} from "../../utils/scheduler.ts";
import { withDatabase } from "../helpers/db.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

type Registration = { name: string; schedule: string; run: () => Promise<void> };

/** A stand-in for Deno.cron that only records what would have been registered. */
function recordingCron(): { register: RegisterCron; registrations: Registration[] } {
  const registrations: Registration[] = [];
  return {
    registrations,
    register: (name, schedule, run) => {
      registrations.push({ name, schedule, run });
    },
  };
}

function serverUrl(database?: string): string {
  const value = Deno.env.get("TALLY_TEST_SERVER_URL");
  if (!value) {
    throw new Error("TALLY_TEST_SERVER_URL is unset: run the tests with `deno task test`");
  }
  if (database === undefined) return value;
  const url = new URL(value);
  url.pathname = `/${database}`;
  return url.toString();
}

/** The database pg_cron runs its jobs in, when the test server preloads pg_cron; else null. */
async function pgCronDatabase(): Promise<string | null> {
  const admin = connect(serverUrl(), { max: 1 });
  try {
    const [row] = await admin<{ preload: string; cron_database: string | null }[]>`
      select current_setting('shared_preload_libraries') as preload,
             current_setting('cron.database_name', true) as cron_database`;
    const preloaded = row.preload.split(",").map((name) => name.trim()).includes("pg_cron");
    return preloaded ? row.cron_database ?? "postgres" : null;
  } finally {
    await admin.end();
  }
}

const cronDatabase = await pgCronDatabase();
const pgCronExpected = Deno.env.get("TALLY_EXPECT_PG_CRON") === "1";

async function dailyRuns(sql: Sql): Promise<number> {
  const [row] = await sql<{ runs: number }[]>`select count(*)::int as runs from credits.daily_runs`;
  return row.runs;
}

Deno.test("SCHEDULER=auto falls back to Deno.cron where pg_cron cannot be created", async () => {
  await withDatabase(async ({ sql }) => {
    const cron = recordingCron();
    assert.equal(await startScheduler(sql, { scheduler: "auto" }, cron.register), "deno");
    assert.equal(cron.registrations.length, 1);
    const [job] = cron.registrations;
    assert.equal(job.name, DENO_CRON_NAME);
    assert.equal(job.schedule, DAILY_SCHEDULE);
    assert.equal(DAILY_SCHEDULE, "0 2 * * *");

    // The registered handler is the daily job itself: it runs credits.run_daily here.
    assert.equal(await dailyRuns(sql), 0);
    await job.run();
    assert.equal(await dailyRuns(sql), 1);
    const [run] = await sql<{ trigger: string; finished: boolean }[]>`
      select trigger, finished_at is not null as finished from credits.daily_runs`;
    assert.deepEqual({ ...run }, { trigger: "scheduler", finished: true });
  });
});

Deno.test("SCHEDULER=pg_cron stops start-up with one line when pg_cron is unavailable", async () => {
  await withDatabase(async ({ sql }) => {
    const cron = recordingCron();
    await assert.rejects(
      () => startScheduler(sql, { scheduler: "pg_cron" }, cron.register),
      (error: Error) => {
        assert.match(error.message, /^invalid setting SCHEDULER: pg_cron is not available \(.+\)$/);
        assert.ok(!error.message.includes("\n"), "the message is one line");
        return true;
      },
    );
    assert.equal(cron.registrations.length, 0, "no fallback to Deno.cron when pg_cron is forced");
  });
});

Deno.test("SCHEDULER=deno registers Deno.cron and SCHEDULER=off schedules nothing", async () => {
  await withDatabase(async ({ sql }) => {
    const forced = recordingCron();
    assert.equal(await startScheduler(sql, { scheduler: "deno" }, forced.register), "deno");
    assert.deepEqual(forced.registrations.map((r) => [r.name, r.schedule]), [
      [DENO_CRON_NAME, DAILY_SCHEDULE],
    ]);

    const off = recordingCron();
    assert.equal(await startScheduler(sql, { scheduler: "off" }, off.register), "off");
    assert.equal(off.registrations.length, 0);
    const [{ installed }] = await sql<{ installed: boolean }[]>`
      select exists (select 1 from pg_extension where extname = 'pg_cron') as installed`;
    assert.equal(installed, false, "off and deno never create the extension");
  });
});

Deno.test({
  name: "this run exercises the pg_cron path when CI asks for it",
  ignore: !pgCronExpected,
  fn: () => {
    assert.notEqual(
      cronDatabase,
      null,
      "TALLY_EXPECT_PG_CRON=1 but the test server does not preload pg_cron",
    );
  },
});

type CronJob = { jobname: string; schedule: string; command: string; database: string };

async function tallyJobs(sql: Sql): Promise<CronJob[]> {
  return await sql<CronJob[]>`
    select jobname, schedule, command, database from cron.job where jobname = ${PG_CRON_JOB}`;
}

/** Creates (or reuses) pg_cron's database and migrates it with Tally's schema and plans. */
async function openCronDatabase(name: string): Promise<Sql> {
  const admin = connect(serverUrl(), { max: 1 });
  try {
    const [{ present }] = await admin<{ present: boolean }[]>`
      select exists (select 1 from pg_database where datname = ${name}) as present`;
    if (!present) await admin.unsafe(`create database "${name.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
  await migrate(serverUrl(name));
  const sql = connect(serverUrl(name), { max: 2 });
  await loadPlans(sql, await readPlansFile(`${ROOT}plans.json`));
  return sql;
}

Deno.test({
  name: "SCHEDULER=auto schedules one pg_cron job at 02:00 UTC, however often Tally starts",
  ignore: cronDatabase === null,
  fn: async () => {
    const sql = await openCronDatabase(cronDatabase!);
    try {
      // A job left by an earlier run of this test would hide a duplicate: start from none.
      await sql`select cron.unschedule(jobid) from cron.job where jobname = ${PG_CRON_JOB}`
        .catch(() => {});
      const cron = recordingCron();
      assert.equal(await startScheduler(sql, { scheduler: "auto" }, cron.register), "pg_cron");
      assert.equal(await startScheduler(sql, { scheduler: "auto" }, cron.register), "pg_cron");
      assert.equal(await startScheduler(sql, { scheduler: "pg_cron" }, cron.register), "pg_cron");
      assert.equal(cron.registrations.length, 0, "Deno.cron is not used next to pg_cron");

      const jobs = await tallyJobs(sql);
      assert.deepEqual(jobs.map((job) => ({ ...job })), [{
        jobname: PG_CRON_JOB,
        schedule: "0 2 * * *",
        command: "CALL credits.run_daily()",
        database: cronDatabase,
      }]);

      // What pg_cron will run works in that database and logs a run.
      const before = await dailyRuns(sql);
      await sql.unsafe(jobs[0].command);
      assert.equal(await dailyRuns(sql), before + 1);
      assert.equal(DAILY_COMMAND, jobs[0].command);

      // Switching to Deno.cron removes the job, so the run is not scheduled twice.
      const deno = recordingCron();
      assert.equal(await startScheduler(sql, { scheduler: "deno" }, deno.register), "deno");
      assert.equal(deno.registrations.length, 1);
      assert.equal((await tallyJobs(sql)).length, 0);
    } finally {
      await sql.end();
    }
  },
});
