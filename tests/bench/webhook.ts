// webhook_p99_ms and rss_mb (docs/performance.md): Tally's real server (main.ts, started the way
// `deno task start` starts it) runs as a subprocess on a fresh database; 8 concurrent senders
// each post signed Stripe invoice.paid events for their own user (every event a new paid period,
// so each one grants credits). Events are signed before the clock starts, so the figures are the
// server's. RSS is the server process's VmRSS, sampled every 50 ms under the load; the peak is
// reported.
import Stripe from "stripe";
import { type Bench, type BenchContext, note, percentile, report } from "./harness.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const SENDERS = 8;
const EVENTS_PER_SENDER = Number(Deno.env.get("BENCH_WEBHOOK_EVENTS") ?? "400");
const WARMUP_PER_SENDER = 25;
const SECRET = "whsec_bench_tally";
const DAY_SECONDS = 86_400;

type Signed = { payload: string; signature: string };

/** A task's command line (a task is a string or an object with a command). */
function taskCommand(tasks: Record<string, unknown>, name: string): string {
  const task = tasks[name];
  const command = typeof task === "string" ? task : (task as { command?: unknown })?.command;
  if (typeof command !== "string") throw new Error(`deno.json has no task ${name}`);
  return command;
}

/**
 * The arguments `deno task start` gives `deno` (deno.json), so that the server measured here runs
 * exactly as users run it, V8 flags included. The tasks share their prefix through the `run`
 * task (`deno task run <flags> main.ts`), which is expanded here.
 */
export async function startTaskArgs(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const tasks = config.tasks as Record<string, unknown>;
  const start = taskCommand(tasks, "start").replace(
    /^deno task run(?=\s)/,
    () => taskCommand(tasks, "run"),
  );
  const words = start.split(/\s+/);
  const args = words.slice(words.indexOf("deno") + 1);
  if (args[0] !== "run" || args.at(-1) !== "main.ts") {
    throw new Error(`deno.json's start task is not "deno run ... main.ts": ${start}`);
  }
  return args;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function rssMegabytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  return match ? Number(match[1]) / 1024 : NaN;
}

async function waitUntilListening(port: number, child: Deno.ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  let exited = false;
  child.status.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/api/webhooks/none`);
      await response.body?.cancel();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error("the server did not start");
}

async function signedInvoices(userId: string, sender: number, count: number): Promise<Signed[]> {
  const cryptoProvider = Stripe.createSubtleCryptoProvider();
  const subscription = `sub_bench_${sender}`;
  const base = Math.floor(Date.UTC(2026, 0, 1) / 1000);
  const events: Signed[] = [];
  for (let k = 0; k < count; k++) {
    const start = base + k * 30 * DAY_SECONDS;
    const payload = JSON.stringify({
      id: `evt_bench_${sender}_${k}`,
      object: "event",
      type: "invoice.paid",
      created: start,
      data: {
        object: {
          id: `in_bench_${sender}_${k}`,
          object: "invoice",
          customer: `cus_bench_${sender}`,
          customer_email: null,
          amount_paid: 990,
          currency: "usd",
          billing_reason: k === 0 ? "subscription_create" : "subscription_cycle",
          created: start,
          parent: {
            type: "subscription_details",
            subscription_details: { subscription, metadata: { user_id: userId } },
          },
          lines: {
            object: "list",
            data: [{
              period: { start, end: start + 30 * DAY_SECONDS },
              pricing: { type: "price_details", price_details: { price: "price_pro_monthly" } },
            }],
          },
        },
      },
    });
    const signature = await Stripe.webhooks.generateTestHeaderStringAsync({
      payload,
      secret: SECRET,
      cryptoProvider,
    });
    events.push({ payload, signature });
  }
  return events;
}

async function send(port: number, event: Signed): Promise<number> {
  const started = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}/api/webhooks/stripe`, {
    method: "POST",
    headers: { "content-type": "application/json", "stripe-signature": event.signature },
    body: event.payload,
  });
  const body = await response.json();
  const elapsed = performance.now() - started;
  if (response.status !== 200 || body.result !== "processed") {
    throw new Error(`webhook answered ${response.status} ${JSON.stringify(body)}`);
  }
  return elapsed;
}

async function run(context: BenchContext): Promise<void> {
  const db = await context.freshDatabase({ max: 2 });
  const port = freePort();
  const server = new Deno.Command(Deno.execPath(), {
    args: await startTaskArgs(),
    cwd: ROOT,
    env: {
      DATABASE_URL: db.url,
      PORT: String(port),
      STRIPE_WEBHOOK_SECRET: SECRET,
      SCHEDULER: "off",
      RUST_BACKTRACE: "0",
    },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    await waitUntilListening(port, server);
    const users = await db.sql<{ id: string }[]>`
      insert into app.users (email)
      select 'bench-webhook-' || n || '@bench.local' from generate_series(1, ${SENDERS}) n
      returning id`;
    const total = WARMUP_PER_SENDER + EVENTS_PER_SENDER;
    const queues = await Promise.all(users.map((u, i) => signedInvoices(u.id, i, total)));

    // The warm-up sends as the measured run does, 8 at a time: the server's pool then has the
    // connections the load needs, each past its first calls (functions compiled, plans cached),
    // as a running server's pool is.
    await Promise.all(queues.map(async (queue) => {
      for (const event of queue.slice(0, WARMUP_PER_SENDER)) await send(port, event);
    }));
    let peakRss = await rssMegabytes(server.pid);
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakRss = Math.max(peakRss, await rssMegabytes(server.pid));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const latencies: number[] = [];
    const started = performance.now();
    await Promise.all(queues.map(async (queue) => {
      for (const event of queue.slice(WARMUP_PER_SENDER)) latencies.push(await send(port, event));
    }));
    const seconds = (performance.now() - started) / 1000;
    sampling = false;
    await sampler;

    const [{ grants }] = await db.sql<{ grants: number }[]>`
      select count(*)::int as grants from credits.grants where kind = 'subscription_period'`;
    if (grants !== SENDERS * total) {
      throw new Error(`expected ${SENDERS * total} grants, saw ${grants}`);
    }
    latencies.sort((a, b) => a - b);
    note(
      `webhooks: ${latencies.length} signed invoice.paid events, ${SENDERS} senders, ` +
        `p50 ${percentile(latencies, 0.5).toFixed(2)} ms, ${
          Math.round(latencies.length / seconds)
        } events/s`,
    );
    report("webhook_p99_ms", percentile(latencies, 0.99), "ms");
    report("webhook_per_s", latencies.length / seconds, "events/s");
    report("rss_mb", peakRss, "MB");
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await db.drop();
  }
}

export const webhookBench: Bench = { name: "webhook", run };
