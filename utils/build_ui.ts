// `deno task build`: bundles the islands into static/islands.js and copies Pico's and uPlot's CSS
// from node_modules into static/. The server also runs it at start-up when an output is missing.
const ROOT = new URL("..", import.meta.url).pathname;
export const STATIC_DIR = `${ROOT}static`;
export const GENERATED = ["islands.js", "pico.min.css", "uPlot.min.css"] as const;

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
  await run([
    "bundle",
    "--platform",
    "browser",
    "--minify",
    "--output",
    `${STATIC_DIR}/islands.js`,
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
export async function uiIsBuilt(): Promise<boolean> {
  const present = await Promise.all(GENERATED.map((name) => exists(`${STATIC_DIR}/${name}`)));
  if (!present.every(Boolean)) return false;
  return await modifiedAt(`${STATIC_DIR}/islands.js`) >= await newestSource();
}

if (import.meta.main) {
  await buildUi();
  const bundle = await Deno.readFile(`${STATIC_DIR}/islands.js`);
  const gzipped = await new Response(
    new Blob([bundle]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer();
  console.log(
    `static/islands.js: ${(bundle.length / 1024).toFixed(1)} KB, ` +
      `${(gzipped.byteLength / 1024).toFixed(1)} KB gzipped`,
  );
}
