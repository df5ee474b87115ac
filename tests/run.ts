// deno task test: makes sure there is a PostgreSQL server (DATABASE_URL, else a throwaway embedded
// one), prepares a migrated template database, then runs `deno test` on tests/ with
// TALLY_TEST_SERVER_URL and TALLY_TEST_TEMPLATE set. Every test clones the template into a
// database of its own (tests/helpers/db.ts), so tests never see each other's rows.
import { startThrowawayEmbedded } from "../db/embedded.ts";
import { migrate } from "../db/migrate.ts";
import { connect } from "../db/client.ts";
import { loadPlans, readPlansFile } from "../utils/plans.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const given = Deno.env.get("DATABASE_URL") || undefined;
let stopEmbedded: (() => Promise<void>) | undefined;
let serverUrl: string;
if (given) {
  serverUrl = given;
} else {
  const embedded = await startThrowawayEmbedded("tally-test-pg-");
  stopEmbedded = embedded.stop;
  serverUrl = embedded.url;
}

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

const template = `tally_tpl_${Deno.pid}_${Date.now().toString(36)}`;
const admin = connect(serverUrl, { max: 1 });
let code = 1;
try {
  await admin.unsafe(`create database "${template}"`);
  const templateUrl = withDatabase(serverUrl, template);
  await migrate(templateUrl);
  const sql = connect(templateUrl, { max: 1 });
  await loadPlans(sql, await readPlansFile(`${ROOT}plans.json`));
  await sql.end();

  const args = Deno.args.length > 0 ? Deno.args : [`${ROOT}tests/`];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", ...args],
    env: {
      TALLY_TEST_SERVER_URL: serverUrl,
      TALLY_TEST_TEMPLATE: template,
      RUST_BACKTRACE: "0",
    },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  code = (await child.status).code;
} finally {
  await admin.unsafe(
    `select pg_terminate_backend(pid) from pg_stat_activity
      where datname like 'tally_t\\_${Deno.pid}\\_%' or datname = '${template}'`,
  ).catch(() => {});
  const leftovers = await admin<{ datname: string }[]>`
    select datname from pg_database where datname = ${template}
       or datname like ${`tally_t\\_${Deno.pid}\\_%`}`.catch(() => []);
  for (const { datname } of leftovers) {
    await admin.unsafe(`drop database if exists "${datname}"`).catch(() => {});
  }
  await admin.end();
  await stopEmbedded?.();
}
Deno.exit(code);
