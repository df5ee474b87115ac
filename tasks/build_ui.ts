// `deno task build`: bundles the islands into static/islands/ (the entry client.js, one chunk per
// island and the chunks they share, so a page loads only the islands it renders) and copies
// Pico's and uPlot's CSS from node_modules into static/. This is the one build of the UI: the
// server runs it once at start-up (ensureUiBuilt) when an output is missing or older than its
// sources.
const ROOT = new URL("..", import.meta.url).pathname;
export const STATIC_DIR = `${ROOT}static`;
/** Where the island bundles go, served at /static/islands/<file>. */
export const ISLANDS_DIR = `${STATIC_DIR}/islands`;
/** The browser entry, the one script a page with islands names. */
export const ISLANDS_ENTRY = "client.js";
const GENERATED = [`islands/${ISLANDS_ENTRY}`, "pico.min.css", "uPlot.min.css"] as const;

const CSS_SOURCES: Record<string, string> = {
  "pico.min.css": "node_modules/@picocss/pico/css/pico.min.css",
  "uPlot.min.css": "node_modules/uplot/dist/uPlot.min.css",
};

async function run(args: string[]): Promise<void> {
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!result.success) {
    throw new Error(`deno ${args[0]} failed: ${new TextDecoder().decode(result.stderr).trim()}`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function buildUi(): Promise<void> {
  await Deno.mkdir(STATIC_DIR, { recursive: true });
  const missingCss = await Promise.all(
    Object.values(CSS_SOURCES).map(async (source) => !(await exists(`${ROOT}${source}`))),
  );
  // The CSS packages are imported by no module, so a first `deno run` does not install them.
  if (missingCss.some(Boolean)) await run(["install"]);
  for (const [name, source] of Object.entries(CSS_SOURCES)) {
    await Deno.copyFile(`${ROOT}${source}`, `${STATIC_DIR}/${name}`);
  }
  // Chunk names carry a hash of their content: the chunks of an older build are removed.
  await Deno.remove(ISLANDS_DIR, { recursive: true }).catch(() => {});
  await run([
    "bundle",
    "--platform",
    "browser",
    "--minify",
    "--code-splitting",
    "--outdir",
    ISLANDS_DIR,
    `${ROOT}islands/client.ts`,
  ]);
}

async function modifiedAt(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

/** Newest change among the sources the bundle is made of (islands/ and components/). */
async function newestSource(): Promise<number> {
  let newest = 0;
  for (const dir of ["islands", "components"]) {
    for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
      if (entry.isFile) newest = Math.max(newest, await modifiedAt(`${ROOT}${dir}/${entry.name}`));
    }
  }
  return newest;
}

/** True when every output exists and the bundle is newer than its sources (no stale UI). */
async function uiIsBuilt(): Promise<boolean> {
  const present = await Promise.all(GENERATED.map((name) => exists(`${STATIC_DIR}/${name}`)));
  if (!present.every(Boolean)) return false;
  return await modifiedAt(`${ISLANDS_DIR}/${ISLANDS_ENTRY}`) >= await newestSource();
}

let building: Promise<void> | undefined;

/**
 * Builds the UI once per process when an output is missing or stale (a fresh clone, `deno task
 * start` after an edit); the server awaits it at start-up and before serving a built file.
 */
export function ensureUiBuilt(): Promise<void> {
  building ??= uiIsBuilt().then((built) => built ? undefined : buildUi()).catch((error) => {
    building = undefined;
    throw error;
  });
  return building;
}

/** The island bundles by file name with their size in bytes, plain and gzipped. */
export async function islandBundleSizes(): Promise<
  { name: string; bytes: number; gzipped: number }[]
> {
  const sizes = [];
  for await (const entry of Deno.readDir(ISLANDS_DIR)) {
    if (!entry.isFile) continue;
    const bundle = await Deno.readFile(`${ISLANDS_DIR}/${entry.name}`);
    const gzipped = await new Response(
      new Blob([bundle]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer();
    sizes.push({ name: entry.name, bytes: bundle.length, gzipped: gzipped.byteLength });
  }
  return sizes.sort((a, b) => a.name.localeCompare(b.name));
}

if (import.meta.main) {
  await buildUi();
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  for (const { name, bytes, gzipped } of await islandBundleSizes()) {
    console.log(`static/islands/${name}: ${kb(bytes)}, ${kb(gzipped)} gzipped`);
  }
}
