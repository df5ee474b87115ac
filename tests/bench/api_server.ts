// What the /api/v1 benchmarks (api.ts) measure around their load: Tally's real server as a
// subprocess (started as `deno task start` starts it, like the webhook bench), and the costs of
// a run read from the machine and the database: CPU time of the server, of the bench process and
// of the database backends (/proc), and the database's own counters (commits, rows written, WAL,
// time spent in statements and in each function).
import { connect, type Sql } from "../../db/client.ts";
import { startTaskArgs } from "./webhook.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
// Linux's USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every mainstream build.
const CLOCK_TICKS_PER_SECOND = 100;

export type ServerProcess = {
  baseUrl: string;
  port: number;
  pid: number;
  /** The V8 inspector's port when started with one (BENCH_PROFILE=1, api_profile.ts). */
  inspectPort?: number;
  stop(): Promise<void>;
};

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Starts main.ts on `databaseUrl` (scheduler off) and waits until it answers. */
export async function startServer(
  databaseUrl: string,
  options: { inspect?: boolean } = {},
): Promise<ServerProcess> {
  const port = freePort();
  const args = await startTaskArgs();
  const inspectPort = options.inspect ? freePort() : undefined;
  if (inspectPort) args.splice(1, 0, `--inspect=127.0.0.1:${inspectPort}`);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { DATABASE_URL: databaseUrl, PORT: String(port), SCHEDULER: "off", RUST_BACKTRACE: "0" },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
  };
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !exited) {
    try {
      // The one /api/v1 route without a key; the first call also builds the document.
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/openapi.json`);
      await response.body?.cancel();
      if (response.ok) {
        return { baseUrl: `http://127.0.0.1:${port}`, port, pid: child.pid, inspectPort, stop };
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error("the server did not start");
}

/** User plus system CPU seconds of a process so far (0 when it is gone or unreadable). */
export async function cpuSeconds(pid: number | "self"): Promise<number> {
  return await processCpuSeconds(pid) ?? 0;
}

/** The same, or null when the process is not on this machine or not readable. */
async function processCpuSeconds(pid: number | "self"): Promise<number | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** The number of established TCP connections to `port` on this machine (IPv4). */
export async function connectionsTo(port: number): Promise<number> {
  const table = await Deno.readTextFile("/proc/net/tcp").catch(() => "");
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return table.split("\n").slice(1).filter((line) => {
    const [, local, , state] = line.trim().split(/\s+/);
    return local?.endsWith(`:${hexPort}`) && state === "01";
  }).length;
}

export async function loadAverage(): Promise<string> {
  return await Deno.readTextFile("/proc/loadavg")
    .then((text) => text.split(" ").slice(0, 3).join(" "))
    .catch(() => "unknown");
}

/** The database's counters at one moment (see costs). */
export type Counters = {
  at: number;
  walLsn: string;
  commits: number;
  rollbacks: number;
  rowsInserted: number;
  rowsUpdated: number;
  /** Milliseconds the database's backends spent executing statements (pg_stat_database). */
  activeMs: number;
  /** Commits in the server's other databases: work that shares the WAL and the disks. */
  otherCommits: number;
  /** Per function (track_functions = all): calls and self time in ms. */
  functions: Record<string, { calls: number; selfMs: number }>;
  /** CPU seconds per backend of this database (pid → seconds), the bench's own excluded. */
  backendCpu: Map<number, number>;
  serverCpu: number;
  benchCpu: number;
};

/**
 * Makes the server's connections to the bench database record the time and calls of every
 * function (pg_stat_user_functions). Set before the server connects; costs a clock read per call.
 */
export async function trackFunctions(sql: Sql): Promise<boolean> {
  const [{ name }] = await sql<{ name: string }[]>`select current_database() as name`;
  // A superuser setting: without it the function lines stay empty.
  return await sql.unsafe(`alter database "${name}" set track_functions = 'all'`)
    .then(() => true, () => false);
}

export async function counters(sql: Sql, serverPid: number): Promise<Counters> {
  const [row] = await sql<
    {
      lsn: string;
      commits: number;
      rollbacks: number;
      inserted: number;
      updated: number;
      active: number;
      other: number;
      functions: Record<string, [number, number]> | null;
      backends: number[] | null;
    }[]
  >`
    select pg_current_wal_lsn()::text as lsn,
           d.xact_commit::bigint as commits, d.xact_rollback::bigint as rollbacks,
           (select coalesce(sum(n_tup_ins), 0) from pg_stat_user_tables)::bigint as inserted,
           (select coalesce(sum(n_tup_upd), 0) from pg_stat_user_tables)::bigint as updated,
           d.active_time::float8 as active,
           (select coalesce(sum(o.xact_commit), 0) from pg_stat_database o
             where o.datname is distinct from current_database())::bigint as other,
           (select json_object_agg(f.schemaname || '.' || f.funcname,
                                   json_build_array(f.calls, f.self_time))
              from pg_stat_user_functions f) as functions,
           (select array_agg(a.pid) from pg_stat_activity a
             where a.datname = current_database() and a.pid <> pg_backend_pid()) as backends
      from pg_stat_database d where d.datname = current_database()`;
  const backendCpu = new Map<number, number>();
  // A backend's pid is a process here only when the database server runs on this machine.
  for (const pid of row.backends ?? []) {
    const seconds = await processCpuSeconds(pid);
    if (seconds !== null) backendCpu.set(pid, seconds);
  }
  const functions: Counters["functions"] = {};
  for (const [name, [calls, selfMs]] of Object.entries(row.functions ?? {})) {
    functions[name] = { calls, selfMs };
  }
  return {
    at: performance.now(),
    walLsn: row.lsn,
    commits: row.commits,
    rollbacks: row.rollbacks,
    rowsInserted: row.inserted,
    rowsUpdated: row.updated,
    activeMs: row.active,
    otherCommits: row.other,
    functions,
    backendCpu,
    serverCpu: serverPid > 0 ? await cpuSeconds(serverPid) : 0,
    benchCpu: await cpuSeconds("self"),
  };
}

/**
 * PostgreSQL 15's backends report their counters at most once a second while busy, and an idle
 * backend holding unreported counters reports them 10 s later (PGSTAT_IDLE_INTERVAL): the first
 * reading waits that long after the warm-up, so that none of it counts in the run. The second is
 * taken once the server has stopped: a backend reports everything as it exits.
 */
export const STATS_IDLE_FLUSH_MS = 10_500;

/** The database's counters once the server's backends have exited (see STATS_IDLE_FLUSH_MS). */
export async function databaseCountersAfterExit(
  sql: Sql,
): Promise<Omit<Counters, "at" | "walLsn" | "backendCpu" | "serverCpu" | "benchCpu">> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [{ others }] = await sql<{ others: number }[]>`
      select count(*)::int as others from pg_stat_activity
       where datname = current_database() and pid <> pg_backend_pid()`;
    if (others === 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The bench's own connections: a fresh one reads what every exited backend reported.
  const { commits, rollbacks, rowsInserted, rowsUpdated, activeMs, otherCommits, functions } =
    await counters(sql, 0);
  return { commits, rollbacks, rowsInserted, rowsUpdated, activeMs, otherCommits, functions };
}

/**
 * The WAL written between two positions: the whole server's (pg_wal_lsn_diff), and this
 * database's alone when pg_waldump can read the server's WAL (a local server): the records that
 * touch its relations, and the commit records of their transactions. Other databases' work on a
 * shared server (tests cloning templates, say) otherwise counts in the first figure.
 */
async function walBytes(
  sql: Sql,
  from: string,
  to: string,
): Promise<{ server: number; own: number | null }> {
  const [row] = await sql<
    { bytes: number; oid: number; bindir: string | null; datadir: string | null }[]
  >`
    select pg_wal_lsn_diff(${to}::pg_lsn, ${from}::pg_lsn)::float8 as bytes,
           (select oid::int from pg_database where datname = current_database()) as oid,
           (select setting from pg_config where name = 'BINDIR') as bindir,
           current_setting('data_directory', true) as datadir`.catch(async () =>
    await sql<{ bytes: number; oid: number; bindir: null; datadir: null }[]>`
      select pg_wal_lsn_diff(${to}::pg_lsn, ${from}::pg_lsn)::float8 as bytes, 0 as oid,
             null as bindir, null as datadir`
  );
  if (!row.bindir || !row.datadir) return { server: row.bytes, own: null };
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(`${row.bindir}/pg_waldump`, {
      args: ["-p", `${row.datadir}/pg_wal`, "-s", from, "-e", to],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch {
    return { server: row.bytes, own: null };
  }
  const ours = `/${row.oid}/`;
  const transactions = new Set<string>();
  let own = 0;
  let records = 0;
  let rest = "";
  const take = (line: string) => {
    const record = /len \(rec\/tot\):\s*\d+\/\s*(\d+), tx:\s*(\d+)/.exec(line);
    if (!record) return;
    records++;
    const [, length, tx] = record;
    const touches = [...line.matchAll(/rel (\d+\/\d+\/)\d+/g)];
    if (touches.some((m) => `/${m[1].split("/")[1]}/` === ours)) {
      own += Number(length);
      if (tx !== "0") transactions.add(tx);
    } else if (touches.length === 0 && transactions.has(tx)) {
      own += Number(length); // the commit record of one of its transactions
    }
  };
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) take(line);
  }
  take(rest);
  const problem = await new Response(child.stderr).text();
  await child.status;
  if (records === 0) console.error(`pg_waldump read no records: ${problem.split("\n")[0]}`);
  return { server: row.bytes, own: records > 0 ? own : null };
}

/**
 * The `# ...` lines of what one request cost between two readings: statements (top-level ones
 * are commits, since the server sends each outside a transaction; the functions they call, from
 * pg_stat_user_functions), rows written, WAL, commits, database time, and CPU per request.
 */
export async function costLines(
  sql: Sql,
  label: string,
  unit: string,
  count: number,
  before: Counters,
  after: Counters,
): Promise<string[]> {
  const per = (value: number) => value / count;
  const fixed = (value: number, digits = 2) => value.toFixed(digits);
  const wal = await walBytes(sql, before.walLsn, after.walLsn);
  const commits = after.commits - before.commits;
  let backendCpu = 0;
  for (const [pid, seconds] of after.backendCpu) {
    backendCpu += seconds - (before.backendCpu.get(pid) ?? 0);
  }
  const wallSeconds = (after.at - before.at) / 1000;
  const calls = Object.entries(after.functions).map(([name, now]) => {
    const then = before.functions[name] ?? { calls: 0, selfMs: 0 };
    return { name, calls: now.calls - then.calls, selfMs: now.selfMs - then.selfMs };
  }).filter((f) => f.calls > 0).sort((a, b) => b.selfMs - a.selfMs);
  const functionCalls = calls.reduce((sum, f) => sum + f.calls, 0);
  const lines = [
    `${label}: ${count} ${unit}s; per ${unit}: ${fixed(per(commits), 3)} commits ` +
    `(= top-level statements), ${fixed(per(functionCalls))} function calls, ` +
    `${fixed(per(after.rowsInserted - before.rowsInserted))} rows inserted + ` +
    `${fixed(per(after.rowsUpdated - before.rowsUpdated))} updated, ` +
    (wal.own === null
      ? `${Math.round(per(wal.server))} B WAL (the whole server's)`
      : `${Math.round(per(wal.own))} B WAL (pg_waldump, this database; the whole server wrote ` +
        `${Math.round(per(wal.server))} B per ${unit})`) +
    (after.rollbacks > before.rollbacks
      ? `, ${after.rollbacks - before.rollbacks} rollbacks in all`
      : ""),
    `${label}: per ${unit}: database statement time ${
      fixed(per(after.activeMs - before.activeMs) * 1000, 0)
    } µs, CPU: server ${fixed(per(after.serverCpu - before.serverCpu) * 1e6, 0)} µs, ` +
    `database backends ${
      after.backendCpu.size > 0 ? `${fixed(per(backendCpu) * 1e6, 0)} µs` : "n/a (not local)"
    }, bench client ${fixed(per(after.benchCpu - before.benchCpu) * 1e6, 0)} µs; CPU busy ${
      fixed(
        (after.serverCpu - before.serverCpu + backendCpu + after.benchCpu - before.benchCpu) /
          wallSeconds,
      )
    } of 2 cores over ${fixed(wallSeconds, 1)} s`,
    `${label}: functions per ${unit} (calls, self µs): ${
      calls.slice(0, 8).map((f) =>
        `${f.name} ${fixed(per(f.calls))} ${fixed(per(f.selfMs) * 1000, 0)}`
      ).join(", ")
    }`,
  ];
  const others = after.otherCommits - before.otherCommits;
  if (others > 0) {
    lines.push(
      `${label}: the server's other databases committed ${others} transactions meanwhile`,
    );
  }
  return lines;
}

/**
 * Samples what the database's busy backends are doing (pg_stat_activity, every `everyMs`) until
 * stopped: statement time above CPU time is waiting, and this says on what. Answers the share of
 * samples per state and wait event ("active CPU" when a backend runs without waiting).
 */
export function sampleWaits(
  url: string,
  everyMs = 20,
): { stop(): Promise<{ summary: string; queries: number }> } {
  // A connection of its own, closed at the end: it then reports its counters as it exits.
  const sql = connect(url, { max: 1 });
  const seen = new Map<string, number>();
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      // A failed run drops the database under the sampler: it then stops with what it has.
      const rows = await sql<{ what: string }[]>`
        select case when state = 'active' and wait_event is null then 'active CPU'
                    else state || coalesce(' ' || wait_event_type || ':' || wait_event, '') end
                 as what
          from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'`;
      samples++;
      for (const { what } of rows) seen.set(what, (seen.get(what) ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })().catch(() => {
    running = false;
  });
  return {
    stop: async () => {
      running = false;
      await loop;
      await sql.end().catch(() => {});
      const summary = [...seen].sort((a, b) => b[1] - a[1]).slice(0, 6)
        .map(([what, count]) => `${what} ${(count / samples).toFixed(2)}`).join(", ");
      return { summary, queries: samples };
    },
  };
}

/**
 * Keeps the server's WAL from the current position until released (a temporary physical
 * replication slot of the bench's one connection, dropped with it at the latest), so that
 * pg_waldump can still read the run's WAL after checkpoints that other work on a shared server
 * may cause. Answers the release; without the right (superuser or REPLICATION), nothing is kept.
 */
export async function retainWal(sql: Sql, name: string): Promise<() => Promise<void>> {
  const made = await sql`select pg_create_physical_replication_slot(${name}, true, true)`
    .then(() => true, () => false);
  return async () => {
    if (made) await sql`select pg_drop_replication_slot(${name})`.catch(() => {});
  };
}
