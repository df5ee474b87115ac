// The client's address (docs/configuration.md, TRUST_PROXY): the socket's peer, or, behind a
// reverse proxy (TRUST_PROXY=on), the last hop of X-Forwarded-For, the address the proxy itself
// saw. The hops before it are written by the client and are never trusted. A last hop that is not
// an IP address falls back to the peer (the proxy), which limits more, never less.
import { isIP } from "node:net";
import type { Context } from "hono";
import { getConnInfo } from "hono/deno";
import type { SignupSource } from "./accounts.ts";
import type { AppEnv } from "./app_env.ts";

/** The client's IP address, or null when the request came without connection info. */
export function clientAddress(c: Context<AppEnv>): string | null {
  if (c.var.config.trustProxy) {
    const last = c.req.header("X-Forwarded-For")?.split(",").at(-1)?.trim();
    if (last && isIP(last) !== 0) return last;
  }
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    // Served without Deno.serve's connection info (app.request in a benchmark).
    return null;
  }
}

/** The sign-up's address and the limit that applies to it. */
export function signupSource(c: Context<AppEnv>): SignupSource {
  return { address: clientAddress(c), limitPerHour: c.var.config.signupLimitPerHour };
}
