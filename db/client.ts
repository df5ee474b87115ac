// The one PostgreSQL client of the app (postgres.js), and how database errors are classified.
import postgres from "postgres";
import { log } from "../utils/log.ts";

export type Sql = postgres.Sql<Record<string, never>>;

/**
 * Opens a connection pool. int8 is read as a JS number: credit amounts stay far below 2^53.
 * Every query's rows are checked by withoutLeadingHoles.
 */
export function connect(url: string, options: { max?: number } = {}): Sql {
  return repairingResults(postgres(url, {
    max: options.max ?? 10,
    // Warnings are the database telling the operator something (a daily batch that failed, a
    // degraded run: sql/credits_daily_run.sql); notices below that level are noise.
    onnotice: (notice) => {
      if (notice.severity === "WARNING") {
        log("warn", "database warning", { notice: notice.message });
      }
    },
    // Seconds to get a connection ready (TCP, TLS, authentication). The default, 30 s, held
    // requests that long while the database was unreachable; this fails them fast with a 503.
    connect_timeout: 2,
    connection: { application_name: "tally" },
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (value: number) => String(value),
        parse: (value: string) => Number(value),
      },
    },
  }) as unknown as Sql);
}

/**
 * postgres.js 3.4.9 keeps its per-connection row counter when a connection dies in the middle of
 * a result (porsager/postgres#1119, #1181): the first result on the reconnected connection puts
 * its rows after as many empty slots, so `rows[0]` is undefined (a signed-in user looked signed
 * out, answered 401). The rows themselves are the right ones: they are moved back to the start.
 */
export function withoutLeadingHoles<T>(result: T): T {
  if (Array.isArray(result) && result.length > 0 && !(0 in result)) {
    let first = 1;
    while (first < result.length && !(first in result)) first++;
    result.splice(0, first);
  }
  return result;
}

type PendingQuery = { resolve?: (value: unknown) => void };

/** The pool, with each query's result passed through withoutLeadingHoles before it resolves. */
function repairingResults(sql: Sql): Sql {
  return new Proxy(sql, {
    apply(target, thisArg, args) {
      const query: PendingQuery = Reflect.apply(target, thisArg, args);
      const resolve = query.resolve;
      if (typeof resolve === "function") {
        query.resolve = (value: unknown) => resolve(withoutLeadingHoles(value));
      }
      return query;
    },
  });
}

/** The SQLSTATE of a database error, if it is one. */
export function sqlState(error: unknown): string | undefined {
  if (error && typeof error === "object" && "code" in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

/**
 * A fault that says nothing about the request: the server is unreachable, restarting, out of
 * connections, or the transaction lost a serialization race. The request may be retried.
 */
export function isTransient(error: unknown): boolean {
  const code = sqlState(error);
  if (code === undefined) {
    const message = error instanceof Error ? error.message : String(error);
    return /ECONNREFUSED|ECONNRESET|CONNECT_TIMEOUT|CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED|EPIPE|ETIMEDOUT|connect|socket/i
      .test(message);
  }
  return code.startsWith("08") || code.startsWith("57P") || code === "53300" ||
    code === "40001" || code === "40P01" || code.startsWith("CONNECT") ||
    code.startsWith("CONNECTION") || code === "ECONNREFUSED" || code === "ECONNRESET" ||
    code === "EPIPE" || code === "ETIMEDOUT" || code === "EHOSTUNREACH" || code === "ENETUNREACH" ||
    // The database of DATABASE_URL is gone (dropped, or being restored): not the request's fault.
    code === "3D000";
}
