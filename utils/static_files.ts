// GET /static/<file>: the built UI assets (utils/build_ui.ts), built on first use when missing.
import type { Context } from "hono";
import type { AppEnv } from "./app_env.ts";
import { buildUi, STATIC_DIR, uiIsBuilt } from "./build_ui.ts";
import { HttpError } from "./errors.ts";

const CONTENT_TYPES: Record<string, string> = {
  "islands.js": "text/javascript; charset=utf-8",
  "pico.min.css": "text/css; charset=utf-8",
  "uPlot.min.css": "text/css; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

// Changes on every start, so browsers fetch the assets of the version that is running.
const VERSION = Date.now().toString(36);

export function staticVersion(): string {
  return VERSION;
}

let building: Promise<void> | undefined;

/** Builds the UI once per process if an output is missing (a fresh clone, `deno task start`). */
export function ensureUiBuilt(): Promise<void> {
  building ??= uiIsBuilt().then((built) => built ? undefined : buildUi()).catch((error) => {
    building = undefined;
    throw error;
  });
  return building;
}

export async function serveStatic(c: Context<AppEnv>): Promise<Response> {
  const name = c.req.param("name") ?? "";
  const type = CONTENT_TYPES[name];
  if (!type) throw new HttpError(404, "not_found", "no such file");
  await ensureUiBuilt();
  const body = await Deno.readFile(`${STATIC_DIR}/${name}`);
  return c.body(body, 200, {
    "Content-Type": type,
    "Cache-Control": c.req.query("v") === VERSION
      ? "public, max-age=31536000, immutable"
      : "no-cache",
  });
}
