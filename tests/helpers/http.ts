// Helpers for the HTTP-level tests: a server (or an in-process app) per test, cookie inspection,
// and the ledger figures that "nothing changed" assertions compare.
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { Client, fetchFrom, startTestApp, startTestServer, type TestServer } from "./server.ts";

/** Runs fn against a fresh server (and database), closing both whatever happens. */
export async function withServer<T>(
  fn: (server: TestServer) => Promise<T>,
  env: Record<string, string> = {},
  start: (env: Record<string, string>) => Promise<TestServer> = startTestServer,
): Promise<T> {
  const server = await start(env);
  try {
    return await fn(server);
  } finally {
    await server.close();
  }
}

/** As withServer, with the app served in process by app.request() (startTestApp): no socket. */
export function withApp<T>(
  fn: (server: TestServer) => Promise<T>,
  env: Record<string, string> = {},
): Promise<T> {
  return withServer(fn, env, startTestApp);
}

/** A client that has just signed up; returns it with the new user's id. */
export async function signedUp(
  server: TestServer,
  email?: string,
): Promise<{ client: Client; userId: string; email: string }> {
  const client = new Client(server.baseUrl, server.config.appOrigin);
  const user = await client.signup(email);
  return { client, userId: user.id, email: user.email };
}

export type CookieAttributes = {
  name: string;
  value: string;
  /** Attribute names lower-cased, mapped to their value ("" for flags such as HttpOnly). */
  attributes: Map<string, string>;
};

/** Parses the one Set-Cookie header of a response. */
export function parseSetCookie(headers: Headers): CookieAttributes {
  const all = headers.getSetCookie();
  assert.equal(all.length, 1, `expected one Set-Cookie header, got ${JSON.stringify(all)}`);
  const [pair, ...rest] = all[0].split(";").map((part) => part.trim());
  const eq = pair.indexOf("=");
  const attributes = new Map<string, string>();
  for (const part of rest) {
    const at = part.indexOf("=");
    if (at < 0) attributes.set(part.toLowerCase(), "");
    else attributes.set(part.slice(0, at).toLowerCase(), part.slice(at + 1));
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes };
}

/** Sends one request without a Client's defaults (no cookie, no Origin unless given). */
export async function send(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: unknown; headers: Headers }> {
  const response = await fetchFrom(baseUrl)(`${baseUrl}${path}`, {
    method,
    headers: options.headers,
    body: options.body,
  });
  const text = await response.text();
  let json: unknown = text;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: the raw text is what the assertion will show.
  }
  return { status: response.status, json, headers: response.headers };
}

/** Asserts the contract's error body {"error": code, "message": non-empty text}. */
export function assertError(
  result: { status: number; json: unknown },
  status: number,
  code: string,
): void {
  assert.equal(result.status, status, `expected ${status}, got ${JSON.stringify(result)}`);
  const body = result.json as { error?: unknown; message?: unknown };
  assert.equal(body.error, code);
  assert.equal(typeof body.message, "string");
  assert.ok((body.message as string).length > 0, "the message is empty");
  assert.deepEqual(Object.keys(body).sort(), ["error", "message"]);
}

export type LedgerState = { balance: number; ledgerRows: number; grants: string };

/** What a user owns in the database, for "bad input changed nothing" comparisons. */
export async function ledgerState(sql: Sql, userId: string): Promise<LedgerState> {
  const [row] = await sql<{ balance: number; ledger_rows: number; grants: string }[]>`
    select credits.balance(${userId}) as balance,
           (select count(*)::int from credits.ledger where user_id = ${userId}) as ledger_rows,
           (select coalesce(string_agg(id || ':' || remaining, ',' order by id), '')
              from credits.grants where user_id = ${userId}) as grants`;
  return { balance: row.balance, ledgerRows: row.ledger_rows, grants: row.grants };
}

/** A free TCP port on the loopback interface that nothing listens on right now. */
export function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
