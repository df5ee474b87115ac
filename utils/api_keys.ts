// API keys of the server-to-server API (docs/api.md#keys): generated here, stored only as the
// SHA-256 of the whole key (sql/app_api_keys.sql). A key is looked up by its hash, so the secret is
// never compared with anything, and a database dump holds no usable key.
import { z } from "zod";
import type { Sql } from "../db/client.ts";

export const API_KEY_PREFIX = "tally_sk_";
/** tally_sk_ and four characters: enough to tell keys apart in a list, nothing to guess with. */
const SHOWN_PREFIX_LENGTH = API_KEY_PREFIX.length + 4;
const RANDOM_BYTES = 32;
/** 32 bytes in unpadded base64url are 43 characters. */
const KEY_PATTERN = /^tally_sk_[A-Za-z0-9_-]{43}$/;

export type ApiKeyScope = "read" | "write";

/** The two scope sets a key may have; write implies read. */
export const ApiKeyScopes = z.union([
  z.tuple([z.literal("read")]),
  z.tuple([z.literal("read"), z.literal("write")]),
], { error: 'scopes are ["read"] or ["read", "write"]' });

export const ApiKeyName = z.string().trim().min(1, "a name is required").max(
  100,
  "a name is at most 100 characters",
);

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A new key: tally_sk_ and 32 random bytes (crypto.getRandomValues) in base64url. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + base64url(crypto.getRandomValues(new Uint8Array(RANDOM_BYTES)));
}

/** Whether the text has the shape of a key; anything else is refused without a database call. */
export function looksLikeApiKey(text: string): boolean {
  return KEY_PATTERN.test(text);
}

/** The SHA-256 of the whole key's UTF-8 text: what app.api_keys stores and looks keys up by. */
export async function hashApiKey(key: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
}

/** What the lists show of a key. */
export function apiKeyPrefix(key: string): string {
  return key.slice(0, SHOWN_PREFIX_LENGTH);
}

export type CreatedApiKey = {
  id: number;
  name: string;
  scopes: ApiKeyScope[];
  /** The key itself: shown in this answer only, never stored. */
  key: string;
  createdAt: string;
};

/** Generates a key and stores its hash (app.create_api_key), in one SQL call. */
export async function createApiKey(
  sql: Sql,
  request: { name: string; scopes: ApiKeyScope[]; createdBy: string | null },
): Promise<CreatedApiKey> {
  const key = generateApiKey();
  const [row] = await sql<{ created: Omit<CreatedApiKey, "key"> }[]>`
    select app.create_api_key(${request.name}, ${request.scopes}::text[],
                              ${await hashApiKey(key)}, ${apiKeyPrefix(key)},
                              ${request.createdBy}) as created`;
  const { id, name, scopes, createdAt } = row.created;
  return { id, name, scopes, key, createdAt };
}
