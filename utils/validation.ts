// Reading request bodies and queries through zod: a bad request is a 400 and touches nothing.
// No text of ours may hold a NUL character (PostgreSQL text cannot store one): every JSON body
// and form is checked here, before any schema or route sees it (the URL: middlewares/nul.ts).
import type { Context } from "hono";
import type { z } from "zod";
import { HttpError } from "./errors.ts";

/** The path ("name", "items.0.key") of the first string or key holding a NUL, else null. */
export function findNul(value: unknown, path: string[] = []): string | null {
  if (typeof value === "string") return value.includes("\u0000") ? path.join(".") : null;
  if (typeof value !== "object" || value === null) return null;
  for (const [key, item] of Object.entries(value)) {
    if (key.includes("\u0000")) return [...path, key].join(".");
    const found = findNul(item, [...path, key]);
    if (found !== null) return found;
  }
  return null;
}

/** The 400 for a NUL character found in the named place (a field path, "path", "query"). */
export function nulRefused(where: string): HttpError {
  return new HttpError(
    400,
    "invalid_request",
    `${where ? `${where}: ` : ""}text must not contain a NUL character`,
  );
}

/** Throws the 400 when any text in the value holds a NUL character. */
export function refuseNul(value: unknown): void {
  const found = findNul(value);
  if (found !== null) throw nulRefused(found);
}

export async function jsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new HttpError(400, "invalid_json", "the request body is not valid JSON");
  }
  refuseNul(raw);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw parsed.error;
  return parsed.data;
}

export function queryParams<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw parsed.error;
  return parsed.data;
}
