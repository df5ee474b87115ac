// The API key check of every /api/v1 route (docs/api.md#keys): `Authorization: Bearer <key>`,
// looked up by the key's SHA-256 (app.check_api_keys) on every request, so a revocation is
// effective for the next request on every server. Checks that arrive together share one SQL call
// (utils/coalescer.ts): a busy server makes one key query per round trip, not one per request.
import type { Context, MiddlewareHandler } from "hono";
import type { Sql } from "../db/client.ts";
import { type ApiKeyScope, hashApiKey, looksLikeApiKey } from "../utils/api_keys.ts";
import type { ApiKey, AppEnv } from "../utils/app_env.ts";
import { createCoalescer } from "../utils/coalescer.ts";
import { HttpError } from "../utils/errors.ts";

/** A key's answer to one hash: the key, or null when it is unknown or revoked. */
export type ApiKeyLookup = (keyHash: Uint8Array) => Promise<ApiKey | null>;

// Up to 4 of the pool's connections check keys at once; a batch holds what arrived meanwhile.
const LOOKUP_OPTIONS = { maxBatch: 500, maxInFlight: 4 };
const READ_METHODS = new Set(["GET", "HEAD"]);

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/**
 * One app.check_api_keys call for many hashes: for each, its key or null, in the same order. The
 * hashes travel as hex text, decoded in the query: postgres.js 3.4.9 cannot send a bytea[]
 * parameter (an array of Uint8Array arrives as one bytea).
 */
export async function checkApiKeys(sql: Sql, hashes: Uint8Array[]): Promise<(ApiKey | null)[]> {
  const rows = await sql<{ key_hash: Uint8Array; id: number; scopes: ApiKeyScope[] }[]>`
    select c.key_hash, c.id, c.scopes
      from app.check_api_keys(
             (select array_agg(decode(h, 'hex')) from unnest(${hashes.map(hex)}::text[]) h)) c`;
  const byHash = new Map(
    rows.map((row) => [hex(row.key_hash), { id: row.id, scopes: row.scopes }]),
  );
  return hashes.map((hash) => byHash.get(hex(hash)) ?? null);
}

/** The coalesced lookup of each pool (each app has one; tests make several). */
const lookups = new WeakMap<Sql, ApiKeyLookup>();

function lookupFor(sql: Sql): ApiKeyLookup {
  let lookup = lookups.get(sql);
  if (!lookup) {
    lookup = createCoalescer((hashes: Uint8Array[]) => checkApiKeys(sql, hashes), LOOKUP_OPTIONS);
    lookups.set(sql, lookup);
  }
  return lookup;
}

function unauthorized(message: string, challenge: string): HttpError {
  return new HttpError(401, "unauthorized", message, { "WWW-Authenticate": challenge });
}

/** The key of `Authorization: Bearer <key>` (the scheme in any case), or undefined. */
function bearerKey(c: Context): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(c.req.header("Authorization") ?? "");
  return match?.[1];
}

/** requireApiKey with another lookup (tests count or delay the SQL calls through it). */
export function apiKeyCheck(
  lookup: (c: Context<AppEnv>) => ApiKeyLookup,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = bearerKey(c);
    if (key === undefined) {
      throw unauthorized("an API key is required: Authorization: Bearer <key>", "Bearer");
    }
    // A malformed key is as unknown as a wrong one; it costs no database call.
    const found = looksLikeApiKey(key) ? await lookup(c)(await hashApiKey(key)) : null;
    if (found === null) {
      throw unauthorized("unknown or revoked API key", 'Bearer error="invalid_token"');
    }
    if (!READ_METHODS.has(c.req.method) && !found.scopes.includes("write")) {
      throw new HttpError(403, "forbidden", "this API key may only read (its scopes: read)");
    }
    c.set("apiKey", found);
    await next();
  };
}

/**
 * 401 `unauthorized` for a missing, unknown or revoked key (with WWW-Authenticate: Bearer), 403
 * `forbidden` for a read key on anything but GET and HEAD; else sets c.var.apiKey.
 */
export const requireApiKey: MiddlewareHandler<AppEnv> = apiKeyCheck((c) => lookupFor(c.var.sql));
