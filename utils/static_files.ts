// GET /static/<file> and /static/islands/<file>: the built UI assets (tasks/build_ui.ts), built on
// first use when missing.
import type { Context } from "hono";
import type { AppEnv } from "./app_env.ts";
import { ensureUiBuilt, ISLANDS_DIR, ISLANDS_ENTRY, STATIC_DIR } from "../tasks/build_ui.ts";
import { HttpError } from "./errors.ts";

export { ensureUiBuilt };

const CONTENT_TYPES: Record<string, string> = {
  "pico.min.css": "text/css; charset=utf-8",
  "uPlot.min.css": "text/css; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

/** The names `deno bundle` gives the entry and its chunks (letters, digits, "-" and "_"). */
const ISLAND_FILE = /^[A-Za-z0-9_-]{1,100}\.js$/;

// Changes on every start, so browsers fetch the assets of the version that is running.
const VERSION = Date.now().toString(36);

export function staticVersion(): string {
  return VERSION;
}

async function readBuilt(path: string): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new HttpError(404, "not_found", "no such file");
    }
    throw error;
  }
}

export async function serveStatic(c: Context<AppEnv>): Promise<Response> {
  const name = c.req.param("name") ?? "";
  const type = CONTENT_TYPES[name];
  if (!type) throw new HttpError(404, "not_found", "no such file");
  await ensureUiBuilt();
  const body = await readBuilt(`${STATIC_DIR}/${name}`);
  return c.body(body, 200, {
    "Content-Type": type,
    "Cache-Control": c.req.query("v") === VERSION
      ? "public, max-age=31536000, immutable"
      : "no-cache",
  });
}

/**
 * The island bundles. The entry is named with ?v= like the other assets; the chunks it imports
 * carry a hash of their content in their name, so they may be cached for good.
 */
export async function serveIsland(c: Context<AppEnv>): Promise<Response> {
  const name = c.req.param("name") ?? "";
  if (!ISLAND_FILE.test(name)) throw new HttpError(404, "not_found", "no such file");
  await ensureUiBuilt();
  const body = await readBuilt(`${ISLANDS_DIR}/${name}`);
  const immutable = name === ISLANDS_ENTRY ? c.req.query("v") === VERSION : true;
  return c.body(body, 200, {
    "Content-Type": "text/javascript; charset=utf-8",
    "Cache-Control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
  });
}
