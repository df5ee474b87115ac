// The layout's rules, read from Deno's own module graph (`deno info --json`, type-only imports
// included): nothing under utils/ imports routes/ or middlewares/, and no module imports itself
// through a circle. The roots are every entry point: the server, the tasks and the browser entry.
import assert from "node:assert/strict";
import { startTaskArgs } from "./bench/webhook.ts";

const ROOT = new URL("..", import.meta.url);
const ROOTS = [
  "main.ts",
  "app.ts",
  "tasks/users.ts",
  "tasks/api_key.ts",
  "db/migrate_cli.ts",
  "islands/client.ts",
];

type Dependency = { code?: { specifier: string }; type?: { specifier: string } };
type ModuleInfo = { specifier: string; dependencies?: Dependency[] };

/** Local module (path relative to the repo) → the local modules it imports. */
async function moduleGraph(): Promise<Map<string, Set<string>>> {
  const graph = new Map<string, Set<string>>();
  const local = (specifier: string) =>
    specifier.startsWith(ROOT.href) ? specifier.slice(ROOT.href.length) : null;
  for (const root of ROOTS) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    const info = JSON.parse(new TextDecoder().decode(output.stdout)) as { modules: ModuleInfo[] };
    for (const module of info.modules) {
      const from = local(module.specifier);
      if (from === null) continue;
      const targets = graph.get(from) ?? new Set<string>();
      for (const dependency of module.dependencies ?? []) {
        for (const target of [dependency.code?.specifier, dependency.type?.specifier]) {
          const to = target === undefined ? null : local(target);
          if (to !== null) targets.add(to);
        }
      }
      graph.set(from, targets);
    }
  }
  return graph;
}

/** Every import circle, each as the path that closes it ("a.ts → b.ts → a.ts"). */
function circles(graph: Map<string, Set<string>>): string[] {
  const found: string[] = [];
  const done = new Set<string>();
  const onPath: string[] = [];
  const visit = (node: string) => {
    const at = onPath.indexOf(node);
    if (at >= 0) {
      found.push([...onPath.slice(at), node].join(" → "));
      return;
    }
    if (done.has(node)) return;
    onPath.push(node);
    for (const next of graph.get(node) ?? []) visit(next);
    onPath.pop();
    done.add(node);
  };
  for (const node of [...graph.keys()].sort()) visit(node);
  return found;
}

const graph = await moduleGraph();

Deno.test("layout: the graph reaches the app's modules (the test reads what it claims)", () => {
  for (const module of ["main.ts", "app.ts", "utils/errors.ts", "islands/client.ts"]) {
    assert.ok(graph.has(module), `${module} is not in the module graph`);
  }
  assert.ok([...graph.keys()].some((module) => module.startsWith("routes/")));
  assert.ok([...graph.keys()].some((module) => module.startsWith("middlewares/")));
});

Deno.test("layout: nothing under utils/ imports routes/ or middlewares/", () => {
  const wrong = [...graph].flatMap(([from, targets]) =>
    from.startsWith("utils/")
      ? [...targets].filter((to) => /^(routes|middlewares)\//.test(to)).map((to) =>
        `${from} → ${to}`
      )
      : []
  );
  assert.deepEqual(wrong, []);
});

Deno.test("layout: no import circle", () => {
  assert.deepEqual(circles(graph), []);
});

Deno.test("layout: pages import neither other pages nor API route modules", () => {
  const isRoute = (module: string) =>
    module.startsWith("routes/") && !module.split("/").some((part) => part.startsWith("_"));
  // A folder's index.ts mounts the route modules of its own folder, as app.ts mounts the rest
  // (routes/api/v1/index.ts: one OpenAPI app whose document covers all of them).
  const mounts = (from: string, to: string) =>
    from.endsWith("/index.ts") &&
    to.slice(0, to.lastIndexOf("/")) === from.slice(0, from.lastIndexOf("/"));
  const wrong = [...graph].flatMap(([from, targets]) =>
    isRoute(from)
      ? [...targets].filter((to) => isRoute(to) && !mounts(from, to)).map((to) => `${from} → ${to}`)
      : []
  );
  assert.deepEqual(wrong, []);
});

type Task = string | { command: string };

/** The tasks of a deno.json, each as its command line. */
function taskCommands(denoJson: string): Record<string, string> {
  const { tasks } = JSON.parse(denoJson) as { tasks: Record<string, Task> };
  return Object.fromEntries(
    Object.entries(tasks).map((
      [name, task],
    ) => [name, typeof task === "string" ? task : task.command]),
  );
}

Deno.test("deno.json: the contract's commands exist, and the deno run prefix is written once", async () => {
  const tasks = taskCommands(await Deno.readTextFile(new URL("deno.json", ROOT)));
  for (
    const name of [
      "start",
      "test",
      "db:migrate",
      "users",
      "api-key",
      "bench",
      "check",
      "build",
      "dev",
    ]
  ) {
    assert.ok(tasks[name], `no task ${name}`);
  }
  const withPrefix = Object.keys(tasks).filter((name) =>
    /--allow-scripts|^RUST_BACKTRACE=0 deno run/.test(tasks[name])
  );
  assert.deepEqual(withPrefix, ["run"]);
  for (const [name, command] of Object.entries(tasks)) {
    if (name !== "run" && command.includes("deno run")) {
      assert.fail(`${name} calls deno run itself`);
    }
  }
  assert.doesNotMatch(tasks.build, /--allow-all|-A\b/, "build needs read, write and run only");
  assert.match(tasks.dev, /--watch/);
});

Deno.test("deno.json: the webhook bench starts the server with the start task's own deno arguments", async () => {
  // The bench measures the server as `deno task start` runs it; it reads the arguments from
  // deno.json, through the shared `run` prefix task.
  const args = await startTaskArgs();
  assert.equal(args[0], "run");
  assert.equal(args.at(-1), "main.ts");
  assert.ok(args.includes("--v8-flags=--max-semi-space-size=4"), args.join(" "));
  assert.ok(args.some((arg) => arg.startsWith("--allow-scripts=")), args.join(" "));
});
