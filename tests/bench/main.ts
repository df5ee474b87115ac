// deno task bench [--million] [--only=name,name]: the benchmarks of docs/performance.md.
// Uses DATABASE_URL's server when set, else a throwaway embedded PostgreSQL. Migrates one template
// database, loads plans.json into it, and gives every benchmark a fresh copy; drops them all at
// the end. Prints `name: value unit` per figure and `# ...` context lines.
import { startThrowawayEmbedded } from "../../db/embedded.ts";
import { migrate } from "../../db/migrate.ts";
import { connect } from "../../db/client.ts";
import { loadPlans, readPlansFile } from "../../utils/plans.ts";
import { type Bench, type BenchOptions, databaseFactory, databaseUrl, note } from "./harness.ts";
import { creditBenches } from "./credits.ts";
import { paymentBenches } from "./payments.ts";
import { pageBenches } from "./page_dashboard.ts";
import { apiBenches } from "./api.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

// The extension points: credit figures (credits.ts), payment figures (payments.ts: webhook_p99_ms,
// rss_mb), page figures (page_dashboard.ts), /api/v1 figures over HTTP (api.ts: api_consume,
// batch_consume, reserve_settle). Each list's benches run in this order.
const benches: Bench[] = [...creditBenches, ...paymentBenches, ...pageBenches, ...apiBenches];

function optionsFrom(args: string[]): { options: BenchOptions; only: Set<string> | null } {
  const onlyArg = args.find((arg) => arg.startsWith("--only="));
  const consumeSeconds = Number(Deno.env.get("BENCH_CONSUME_SECONDS") ?? "10");
  if (!Number.isFinite(consumeSeconds) || consumeSeconds <= 0) {
    throw new Error("BENCH_CONSUME_SECONDS must be a positive number");
  }
  return {
    options: {
      million: args.includes("--million") || Deno.env.get("BENCH_MILLION") === "1",
      consumeSeconds,
    },
    only: onlyArg ? new Set(onlyArg.slice("--only=".length).split(",")) : null,
  };
}

const { options, only } = optionsFrom(Deno.args);
if (only?.has("distribute_1m") || only?.has("daily_run_1m")) options.million = true;

const given = Deno.env.get("DATABASE_URL") || undefined;
let serverUrl: string;
let stopEmbedded: (() => Promise<void>) | undefined;
if (given) {
  serverUrl = given;
  note(`server: ${new URL(given).host}`);
} else {
  const embedded = await startThrowawayEmbedded("tally-bench-pg-");
  stopEmbedded = embedded.stop;
  serverUrl = embedded.url;
  note("server: embedded PostgreSQL (throwaway)");
}

const prefix = `tally_bench_${Deno.pid}`;
const template = `${prefix}_tpl`;
const admin = connect(serverUrl, { max: 1 });
let failed = false;
try {
  const [{ version }] = await admin<{ version: string }[]>`select version()`;
  note(version);
  await admin.unsafe(`create database "${template}"`);
  const templateUrl = databaseUrl(serverUrl, template);
  await migrate(templateUrl);
  const sql = connect(templateUrl, { max: 1 });
  await loadPlans(sql, await readPlansFile(`${ROOT}plans.json`));
  await sql.end();

  const context = { options, freshDatabase: databaseFactory(serverUrl, template, prefix) };
  for (const bench of benches) {
    if (only && !only.has(bench.name)) continue;
    // The machine may be shared: say how busy it was, so that figures can be compared fairly.
    const load = await Deno.readTextFile("/proc/loadavg").then((text) => text.split(" ")[0])
      .catch(() => "unknown");
    note(`${bench.name}: 1-minute load average before it ${load}`);
    try {
      await bench.run(context);
    } catch (error) {
      failed = true;
      console.error(`bench ${bench.name} failed: ${error instanceof Error ? error.stack : error}`);
    }
  }
} finally {
  const leftovers = await admin<{ datname: string }[]>`
    select datname from pg_database where datname like ${`${prefix}\\_%`}`.catch(() => []);
  for (const { datname } of leftovers) {
    await admin.unsafe(`drop database if exists "${datname}" with (force)`).catch(() => {});
  }
  await admin.end();
  await stopEmbedded?.();
}
Deno.exit(failed ? 1 : 0);
