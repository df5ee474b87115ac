// No text of ours may hold a NUL character (PostgreSQL text cannot store one): a URL whose path
// or query holds an encoded NUL (%00) is refused with 400 before routing. Bodies are checked where
// they are parsed (utils/validation.ts).
import type { MiddlewareHandler } from "hono";
import { nulRefused } from "../utils/validation.ts";

/** A URL whose path or query holds an encoded NUL (%00) is refused before routing. */
export const refuseNulInUrl: MiddlewareHandler = async (c, next) => {
  // Most URLs hold no escape at all: they are not parsed.
  if (!c.req.url.includes("%")) return await next();
  const url = new URL(c.req.url);
  if (/%00/i.test(url.pathname)) throw nulRefused("path");
  if (/%00/i.test(url.search)) throw nulRefused("query");
  await next();
};
