// What every benchmark shares: the server, fresh databases cloned from one migrated template, and
// the output format of docs/performance.md (`name: value unit`, context lines start with `#`).
import { connect, type Sql } from "../../db/client.ts";

export type BenchOptions = {
  /** Also run the 1,000,000-user distribution (`--million` or BENCH_MILLION=1). */
  million: boolean;
  /** Seconds of measured consumption (BENCH_CONSUME_SECONDS, default 10). */
  consumeSeconds: number;
};

export type BenchDatabase = {
  url: string;
  sql: Sql;
  drop(): Promise<void>;
};

export type BenchContext = {
  options: BenchOptions;
  /** A database cloned from the freshly migrated template (plans loaded). */
  freshDatabase(pool?: { max?: number }): Promise<BenchDatabase>;
};

/** A benchmark prints its figures with `report` and its context with `note`. */
export type Bench = {
  name: string;
  run(context: BenchContext): Promise<void>;
};

export function report(name: string, value: number, unit: string): void {
  const shown = Math.abs(value) >= 100
    ? Math.round(value).toString()
    : Number(value.toPrecision(3)).toString();
  console.log(`${name}: ${shown} ${unit}`);
}

export function note(text: string): void {
  console.log(`# ${text}`);
}

export function percentile(sorted: Float64Array | number[], fraction: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}

export function databaseUrl(serverUrl: string, database: string): string {
  const parsed = new URL(serverUrl);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Times fn with a monotonic clock, in seconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - started) / 1000, value };
}

/**
 * Makes `create database ... template` copies of one template; every copy carries `prefix` so
 * that clean-up can find what a crashed run left behind.
 */
export function databaseFactory(
  serverUrl: string,
  template: string,
  prefix: string,
): (pool?: { max?: number }) => Promise<BenchDatabase> {
  let counter = 0;
  return async (pool = {}) => {
    const name = `${prefix}_${++counter}`;
    const admin = connect(serverUrl, { max: 1 });
    try {
      await admin.unsafe(`create database "${name}" template "${template}"`);
    } finally {
      await admin.end();
    }
    const url = databaseUrl(serverUrl, name);
    const sql = connect(url, { max: pool.max ?? 4 });
    return {
      url,
      sql,
      drop: async () => {
        await sql.end({ timeout: 5 });
        const cleaner = connect(serverUrl, { max: 1 });
        try {
          await cleaner.unsafe(`drop database if exists "${name}" with (force)`);
        } finally {
          await cleaner.end();
        }
      },
    };
  };
}
