// What the /api/v1 tests share (not a test): Tally on a real port with an admin who made a write
// key and a read key through POST /api/admin/api-keys, typed clients with each, and raw requests
// with a bearer key for what the typed client cannot send (bad JSON, wrong types).
import assert from "node:assert/strict";
import { createTallyClient, type TallyClient } from "../../../../client/tally.ts";
import { verifyEmail } from "../../../helpers/db.ts";
import { send, signedUp, withServer } from "../../../helpers/http.ts";
import type { Client, TestServer } from "../../../helpers/server.ts";

const ADMIN = "v1-admin@test.local";

export type V1 = {
  server: TestServer;
  /** The signed-in admin's browser-like client (for /api/admin/api-keys). */
  admin: Client;
  writeKey: string;
  readKey: string;
  /** The typed client with the write key. */
  tally: TallyClient;
  /** The typed client with the read key. */
  reader: TallyClient;
  /** A raw request with the write key (or the given one); body is sent as is when a string. */
  call(
    method: string,
    path: string,
    body?: unknown,
    key?: string | null,
  ): Promise<{ status: number; json: unknown; headers: Headers }>;
};

/** Makes a key as the admin does: POST /api/admin/api-keys; answers {id, key}. */
export async function makeKey(
  admin: Client,
  scopes: ("read" | "write")[],
): Promise<{ id: number; key: string }> {
  const made = await admin.request("POST", "/api/admin/api-keys", { name: "v1 tests", scopes });
  assert.equal(made.status, 201, JSON.stringify(made.json));
  const body = made.json as { id: number; key: string };
  assert.match(body.key, /^tally_sk_/);
  return body;
}

export async function withV1<T>(
  fn: (v1: V1) => Promise<T>,
  env: Record<string, string> = {},
): Promise<T> {
  return await withServer(async (server) => {
    const { client: admin } = await signedUp(server, ADMIN);
    await verifyEmail(server.db.sql, ADMIN);
    const writeKey = (await makeKey(admin, ["read", "write"])).key;
    const readKey = (await makeKey(admin, ["read"])).key;
    const options = { baseUrl: server.baseUrl, retries: 0 };
    return await fn({
      server,
      admin,
      writeKey,
      readKey,
      tally: createTallyClient({ ...options, apiKey: writeKey }),
      reader: createTallyClient({ ...options, apiKey: readKey }),
      call: (method, path, body, key = writeKey) =>
        send(server.baseUrl, method, path, {
          headers: {
            ...(key === null ? {} : { authorization: `Bearer ${key}` }),
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          body: body === undefined
            ? undefined
            : typeof body === "string"
            ? body
            : JSON.stringify(body),
        }),
    });
  }, { ADMIN_EMAILS: ADMIN, ...env });
}

/** Creates a customer (201) and answers its body. */
export async function newCustomer(
  v1: V1,
  externalId = `cust_${crypto.randomUUID()}`,
  body: { email?: string; name?: string } = {},
) {
  const { data, response } = await v1.tally.putCustomer(externalId, body);
  assert.equal(response.status, 201);
  assert.ok(data);
  return data;
}

/** A customer's balance and ledger size straight from the database ("nothing changed" checks). */
export async function books(
  v1: V1,
  externalId: string,
): Promise<{ balance: number; rows: number }> {
  const [row] = await v1.server.db.sql<{ balance: number; rows: number }[]>`
    select credits.balance(u.id) as balance,
           (select count(*)::int from credits.ledger l where l.user_id = u.id) as rows
      from app.users u where u.external_id = ${externalId}`;
  assert.ok(row, `no customer ${externalId}`);
  return row;
}

/**
 * The bad amounts of the amount rules, as JSON members (raw text, so that 2^53 + 1 reaches the
 * server as written): each is refused with 400 invalid_request and changes nothing.
 */
export const BAD_AMOUNTS: [string, string][] = [
  ["2^53 + 1", '"amount": 9007199254740993'],
  ["2^53", '"amount": 9007199254740992'],
  ["a string", '"amount": "1"'],
  ["a fraction", '"amount": 1.5'],
  ["zero", '"amount": 0'],
  ["negative", '"amount": -1'],
  ["null", '"amount": null'],
  ["both amount and feature", '"amount": 1, "feature": "chat"'],
  ["neither amount nor feature", ""],
  ["quantity without feature", '"amount": 1, "quantity": 2'],
  ["quantity zero", '"feature": "chat", "quantity": 0'],
  ["quantity a fraction", '"feature": "chat", "quantity": 1.5'],
  ["quantity 2^53 + 1", '"feature": "chat", "quantity": 9007199254740993'],
];

/** A JSON body of the members (raw text) and the others (a JSON-able object). */
export function bodyWith(members: string, others: Record<string, unknown>): string {
  const rest = JSON.stringify(others).slice(1, -1);
  return `{${[members, rest].filter((part) => part.length > 0).join(", ")}}`;
}
