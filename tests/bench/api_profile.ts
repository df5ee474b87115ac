// BENCH_PROFILE=1: the server of an /api/v1 bench runs with the V8 inspector on, and its CPU is
// sampled over the measured phase (the inspector's Profiler domain); the bench then prints where
// the server's JavaScript time went, by function and by package, and writes the whole profile
// (open it in Chrome DevTools) to BENCH_PROFILE_DIR (default /tmp).

export const profiling = Deno.env.get("BENCH_PROFILE") === "1";

type Node = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[] };

export type Profiler = { stop(label: string): Promise<string[]> };

/** Connects to the inspector on `port` and starts sampling. */
export async function startProfiler(port: number): Promise<Profiler> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
    webSocketDebuggerUrl: string;
  }[];
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  let next = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data as string) as { id?: number; result?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  };
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = ++next;
      waiting.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 200 });
  await call("Profiler.start");
  return {
    stop: async (label) => {
      const { profile } = await call("Profiler.stop") as { profile: Profile };
      socket.close();
      const dir = Deno.env.get("BENCH_PROFILE_DIR") ?? "/tmp";
      const file = `${dir}/tally-${label}-${Date.now()}.cpuprofile`;
      await Deno.writeTextFile(file, JSON.stringify(profile));
      return [`${label}: server profile written to ${file}`, ...summarize(label, profile)];
    },
  };
}

/** Self time by function and by package (npm name, or the file for Tally's own code). */
function summarize(label: string, profile: Profile): string[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfTime = new Map<number, number>();
  profile.samples.forEach((id, index) => {
    selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  let total = 0;
  const functions = new Map<string, number>();
  const packages = new Map<string, number>();
  for (const [id, micros] of selfTime) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    total += micros;
    const place = url.replace(/^.*\/node_modules\/\.deno\//, "npm:").replace(
      /^file:\/\/.*?\/wt-[^/]+\//,
      "",
    );
    const name = `${functionName || "(anonymous)"} ${place.split("/").slice(-2).join("/")}:${
      lineNumber + 1
    }`;
    functions.set(name, (functions.get(name) ?? 0) + micros);
    const pkg = url === ""
      ? functionName.startsWith("(") ? functionName : "(native)"
      : url.includes("/node_modules/.deno/")
      ? url.replace(/^.*\/node_modules\/\.deno\/([^/]+)\/.*$/, "$1")
      : url.startsWith("ext:")
      ? url.split("/").slice(0, 2).join("/")
      : place.split("/").slice(0, 2).join("/");
    packages.set(pkg, (packages.get(pkg) ?? 0) + micros);
  }
  const top = (map: Map<string, number>, count: number) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, count)
      .map(([name, micros]) => `${name} ${(100 * micros / total).toFixed(1)}%`).join(", ");
  return [
    `${label}: server JS self time by package: ${top(packages, 12)}`,
    `${label}: server JS self time by function: ${top(functions, 15)}`,
  ];
}
