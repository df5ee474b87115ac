// The /api/v1 benchmarks of docs/performance.md, each against its own fresh database and Tally's
// real server (main.ts as `deno task start` runs it) as a subprocess, with one write API key:
//   api_consume_per_s, api_consume_p99_ms  POST /api/v1/customers/{id}/consume, 32 clients,
//                                          1,000 customers
//   batch_consume_per_s                    events/s through POST /api/v1/usage/batch (1,000 per
//                                          call, 4 callers, 10,000 customers)
//   reserve_settle_per_s                   reserve-then-settle pairs/s, 32 clients, 1,000 customers
// Customers are made through PUT and given credits through POST .../grants, as an app would.
// Each customer also gets a little usage history, then VACUUM ANALYZE and CHECKPOINT. Each bench
// warms up for 2 s, pauses so that the database's counters catch up, measures for
// BENCH_CONSUME_SECONDS (default 10), stops the server, prints what a request cost on the
// database and in CPU (api_server.ts), then checks the books and fails loudly if they disagree.
// Every request goes through the typed client (client/tally.ts); BENCH_API_CLIENT=fetch sends the
// same bodies with plain fetch instead. The typed client costs the bench process about 10% more
// CPU per consume and 40% more per reserve-and-settle pair (openapi-fetch's Request building and
// the retry wrapper's body clone), but three interleaved rounds of each gave the same figures
// within the machine's noise. Both reuse connections (keep-alive: one per client).
import type { Sql } from "../../db/client.ts";
import { createTallyClient, type TallyClient } from "../../client/tally.ts";
import { createApiKey } from "../../utils/api_keys.ts";
import {
  type Bench,
  type BenchContext,
  type BenchDatabase,
  note,
  percentile,
  report,
} from "./harness.ts";
import { profiling, startProfiler } from "./api_profile.ts";
import {
  connectionsTo,
  costLines,
  counters,
  databaseCountersAfterExit,
  loadAverage,
  retainWal,
  sampleWaits,
  type ServerProcess,
  startServer,
  STATS_IDLE_FLUSH_MS,
  trackFunctions,
} from "./api_server.ts";

const WARMUP_SECONDS = 2;
const CUSTOMER_GRANT = 1_000_000_000;
const SETUP_CONCURRENCY = 32;
const HISTORY_PER_CUSTOMER = 3;

type ClientKind = "typed" | "fetch";

function clientKind(): ClientKind {
  const kind = Deno.env.get("BENCH_API_CLIENT") ?? "typed";
  if (kind !== "typed" && kind !== "fetch") {
    throw new Error(`BENCH_API_CLIENT is typed or fetch, not ${kind}`);
  }
  return kind;
}

type Answer = { status: number; body: unknown };

/** The requests the benches send, through the typed client or as plain fetch. */
type Api = {
  consume(customer: string, idempotencyKey: string): Promise<Answer>;
  usageBatch(events: { customer: string; amount: number; idempotencyKey: string }[]): Promise<
    Answer
  >;
  reserve(customer: string, amount: number, idempotencyKey: string): Promise<Answer>;
  settle(reservationId: number, amount: number): Promise<Answer>;
};

function typedApi(tally: TallyClient): Api {
  const answer = async (
    call: Promise<{ data?: unknown; error?: unknown; response: Response }>,
  ): Promise<Answer> => {
    const { data, error, response } = await call;
    return { status: response.status, body: data ?? error };
  };
  return {
    consume: (customer, idempotencyKey) =>
      answer(tally.consume(customer, { amount: 1, idempotencyKey })),
    usageBatch: (events) => answer(tally.usageBatch(events)),
    reserve: (customer, amount, idempotencyKey) =>
      answer(tally.reserve(customer, { amount, idempotencyKey, ttlSeconds: 600 })),
    settle: (id, amount) => answer(tally.settle(id, { amount })),
  };
}

function fetchApi(baseUrl: string, apiKey: string): Api {
  const headers = { authorization: `Bearer ${apiKey}`, "content-type": "application/json" };
  const post = async (path: string, body: unknown): Promise<Answer> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  };
  const customerPath = (id: string) => `/api/v1/customers/${encodeURIComponent(id)}`;
  return {
    consume: (customer, idempotencyKey) =>
      post(`${customerPath(customer)}/consume`, { amount: 1, idempotencyKey }),
    usageBatch: (events) => post("/api/v1/usage/batch", { events }),
    reserve: (customer, amount, idempotencyKey) =>
      post(`${customerPath(customer)}/reservations`, { amount, idempotencyKey, ttlSeconds: 600 }),
    settle: (id, amount) => post(`/api/v1/reservations/${id}/settle`, { amount }),
  };
}

function unexpected(what: string, answer: Answer): Error {
  return new Error(`${what} answered ${answer.status} ${JSON.stringify(answer.body)}`);
}

/** Runs fn over items with `concurrency` at a time. */
async function eachConcurrently<T>(
  items: T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

type Setup = {
  db: BenchDatabase;
  server: ServerProcess;
  api: Api;
  customers: string[];
};

/**
 * A fresh database, the server on it, a write key, and `count` customers made through PUT, each
 * granted CUSTOMER_GRANT credits through POST .../grants.
 */
async function setUp(context: BenchContext, count: number, label: string): Promise<Setup> {
  // One connection: once the server has stopped, it is the database's only backend.
  const db = await context.freshDatabase({ max: 1 });
  let server: ServerProcess | undefined;
  try {
    if (!await trackFunctions(db.sql)) {
      note(`${label}: track_functions needs a superuser; no per-function figures`);
    }
    const { key } = await createApiKey(db.sql, {
      name: `bench ${label}`,
      scopes: ["read", "write"],
      createdBy: null,
    });
    server = await startServer(db.url, { inspect: profiling });
    // No retries: a 503 or a lost connection is a failure of the run, not something to hide.
    const tally = createTallyClient({ baseUrl: server.baseUrl, apiKey: key, retries: 0 });
    const customers = Array.from({ length: count }, (_, n) => `bench_${label}_${n}`);
    await eachConcurrently(customers, SETUP_CONCURRENCY, async (customer) => {
      const made = await tally.putCustomer(customer);
      if (made.response.status !== 201) {
        throw unexpected(`PUT ${customer}`, { status: made.response.status, body: made.error });
      }
      const granted = await tally.grant(customer, {
        amount: CUSTOMER_GRANT,
        sourceKey: `bench-grant:${customer}`,
      });
      if (granted.response.status !== 201) {
        throw unexpected(`grant ${customer}`, {
          status: granted.response.status,
          body: granted.error,
        });
      }
    });
    // A little usage history per customer before the statistics are taken, so that the plans
    // are those of a running system rather than of an empty ledger (as in credits.ts).
    const history = customers.flatMap((customer) =>
      Array.from({ length: HISTORY_PER_CUSTOMER }, (_, k) => ({
        customer,
        amount: 1,
        idempotencyKey: `bench-history:${k}`,
      }))
    );
    const calls = Array.from(
      { length: Math.ceil(history.length / 1000) },
      (_, n) => history.slice(n * 1000, (n + 1) * 1000),
    );
    await eachConcurrently(calls, 4, async (events) => {
      const sent = await tally.usageBatch(events);
      const results = sent.data?.results ?? [];
      if (results.length !== events.length || results.some((r) => r.status !== "ok")) {
        throw unexpected("history batch", { status: sent.response.status, body: sent.error });
      }
    });
    await db.sql`vacuum analyze`;
    await db.sql`checkpoint`;
    const api = clientKind() === "typed" ? typedApi(tally) : fetchApi(server.baseUrl, key);
    return { db, server, api, customers };
  } catch (error) {
    await server?.stop();
    await db.drop();
    throw error;
  }
}

async function tearDown(setup: Setup): Promise<void> {
  await setup.server.stop();
  await setup.db.drop();
}

type Phase = { operations: number; seconds: number; latencies: Float64Array };

/**
 * `clients` loops each calling `step` until `seconds` have passed; each step's duration is one
 * latency. A step answers how many operations it did (a batch call does 1,000).
 */
async function runPhase(
  clients: number,
  seconds: number,
  step: (client: number, call: number) => Promise<number>,
): Promise<Phase> {
  const latencies: number[] = [];
  let operations = 0;
  const started = performance.now();
  const stopAt = started + seconds * 1000;
  let ended = started;
  await Promise.all(Array.from({ length: clients }, async (_, client) => {
    for (let call = 0; performance.now() < stopAt; call++) {
      const before = performance.now();
      // Awaited before the sum: `operations += await ...` would add to a stale value.
      const done = await step(client, call);
      const after = performance.now();
      operations += done;
      latencies.push(after - before);
      if (after > ended) ended = after;
    }
  }));
  return {
    operations,
    seconds: (ended - started) / 1000,
    latencies: Float64Array.from(latencies).sort(),
  };
}

/**
 * Warm-up, then the measured phase between two readings of the counters, with the context lines.
 * Answers the measured phase and the operations of both phases (for the books). The server is
 * stopped after the measured phase: its backends report their last counters as they exit.
 */
async function measure(
  setup: Setup,
  label: string,
  unit: string,
  clients: number,
  seconds: number,
  step: (phase: string, client: number, call: number) => Promise<number>,
): Promise<{ measured: Phase; total: number }> {
  const loadBefore = await loadAverage();
  const warmup = await runPhase(clients, WARMUP_SECONDS, (c, n) => step("w", c, n));
  await new Promise((resolve) => setTimeout(resolve, STATS_IDLE_FLUSH_MS));
  const releaseWal = await retainWal(setup.db.sql, `tally_bench_${Deno.pid}_${label}`);
  const before = await counters(setup.db.sql, setup.server.pid);
  const waits = sampleWaits(setup.db.url);
  const profiler = setup.server.inspectPort ? await startProfiler(setup.server.inspectPort) : null;
  const measured = await runPhase(clients, seconds, (c, n) => step("m", c, n)).catch(
    async (error) => {
      await waits.stop();
      throw error;
    },
  );
  const profile = await profiler?.stop(label) ?? [];
  const connections = await connectionsTo(setup.server.port);
  const atEnd = await counters(setup.db.sql, setup.server.pid);
  const waited = await waits.stop();
  await setup.server.stop();
  const after = { ...atEnd, ...await databaseCountersAfterExit(setup.db.sql) };
  // The sampler's readings are commits of this database too.
  after.commits -= waited.queries;
  const lines = await costLines(setup.db.sql, label, unit, measured.operations, before, after);
  await releaseWal();
  for (const line of lines) note(line);
  note(`${label}: busy backends on average, by what they were doing: ${waited.summary}`);
  for (const line of profile) note(line);
  const l = measured.latencies;
  const steps = unit === "event" ? "calls" : `${unit}s`;
  note(
    `${label}: ${measured.latencies.length} ${steps} in ${measured.seconds.toFixed(1)} s after ` +
      `${warmup.latencies.length} warm-up ${steps}, ${clients} clients (${clientKind()} client, ` +
      `${connections} HTTP connections open); latency p50 ${percentile(l, 0.5).toFixed(2)} ms, ` +
      `p99 ${percentile(l, 0.99).toFixed(2)} ms, p99.9 ${percentile(l, 0.999).toFixed(2)} ms, ` +
      `max ${l[l.length - 1].toFixed(1)} ms`,
  );
  note(`${label}: load average at start ${loadBefore}, at end ${await loadAverage()}`);
  return { measured, total: warmup.operations + measured.operations };
}

type BookCheck = {
  customers: number;
  disagreeing: number;
  brokenChain: number;
  usageEntries: number;
};

/**
 * For every customer: balance row = ledger sum = sum of the open grants' remaining; the ledger's
 * balance-after chain unbroken; and the number of usage entries.
 */
async function checkBooks(sql: Sql): Promise<BookCheck> {
  const [row] = await sql<BookCheck[]>`
    with ledger as (
      select user_id, sum(amount) as total from credits.ledger group by user_id
    ), remaining as (
      select user_id, sum(remaining) as total from credits.grants
       where expired_at is null group by user_id
    )
    select count(*)::int as customers,
           count(*) filter (where b.balance is distinct from coalesce(l.total, 0)
                               or b.balance is distinct from coalesce(r.total, 0))::int
             as disagreeing,
           (select count(*)::int from (
              select balance_after, sum(amount) over (partition by user_id order by id) as running
                from credits.ledger) x
             where balance_after <> running) as "brokenChain",
           (select count(*)::int from credits.ledger where kind = 'usage') as "usageEntries"
      from app.users u
      join credits.balances b on b.user_id = u.id
      left join ledger l on l.user_id = u.id
      left join remaining r on r.user_id = u.id
     where u.external_id is not null`;
  return row;
}

function assertBooks(label: string, check: BookCheck, customers: number, usages: number): void {
  if (
    check.customers !== customers || check.disagreeing !== 0 || check.brokenChain !== 0 ||
    check.usageEntries !== usages
  ) {
    throw new Error(
      `${label}: the books disagree: ${JSON.stringify(check)}; expected ${customers} customers, ` +
        `${usages} usage entries (one per ok answer), none disagreeing`,
    );
  }
  note(
    `${label}: books agree for all ${customers} customers (balance = ledger = open grants), ` +
      `${usages} usage entries = ok answers (with the setup's history)`,
  );
}

const randomOf = (items: string[]) => items[Math.floor(Math.random() * items.length)];

const CONSUME_CLIENTS = 32;
const CONSUME_CUSTOMERS = 1_000;

async function apiConsume(context: BenchContext): Promise<void> {
  const setup = await setUp(context, CONSUME_CUSTOMERS, "consume");
  try {
    const { measured, total } = await measure(
      setup,
      "api_consume",
      "request",
      CONSUME_CLIENTS,
      context.options.consumeSeconds,
      async (phase, client, call) => {
        const answer = await setup.api.consume(
          randomOf(setup.customers),
          `bench:${phase}:${client}:${call}`,
        );
        const body = answer.body as { usageId?: unknown };
        if (answer.status !== 200 || typeof body?.usageId !== "number") {
          throw unexpected("consume", answer);
        }
        return 1;
      },
    );
    report("api_consume_per_s", measured.operations / measured.seconds, "ops/s");
    report("api_consume_p99_ms", percentile(measured.latencies, 0.99), "ms");
    assertBooks(
      "api_consume",
      await checkBooks(setup.db.sql),
      CONSUME_CUSTOMERS,
      total + CONSUME_CUSTOMERS * HISTORY_PER_CUSTOMER,
    );
  } finally {
    await tearDown(setup);
  }
}

const BATCH_CALLERS = 4;
const BATCH_EVENTS = 1_000;
const BATCH_CUSTOMERS = 10_000;

async function batchConsume(context: BenchContext): Promise<void> {
  const setup = await setUp(context, BATCH_CUSTOMERS, "batch");
  try {
    const { measured, total } = await measure(
      setup,
      "batch_consume",
      "event",
      BATCH_CALLERS,
      context.options.consumeSeconds,
      async (phase, client, call) => {
        const events = Array.from({ length: BATCH_EVENTS }, (_, n) => ({
          customer: randomOf(setup.customers),
          amount: 1,
          idempotencyKey: `bench:${phase}:${client}:${call}:${n}`,
        }));
        const answer = await setup.api.usageBatch(events);
        const results = (answer.body as { results?: { status: string }[] })?.results;
        if (
          answer.status !== 200 || results?.length !== BATCH_EVENTS ||
          results.some((result) => result.status !== "ok")
        ) {
          throw unexpected(
            "usage/batch",
            { status: answer.status, body: results?.find((r) => r.status !== "ok") ?? answer.body },
          );
        }
        return BATCH_EVENTS;
      },
    );
    note(
      `batch_consume: ${measured.operations} events in ${measured.latencies.length} calls, ` +
        `call p50 ${percentile(measured.latencies, 0.5).toFixed(1)} ms, p99 ${
          percentile(measured.latencies, 0.99).toFixed(1)
        } ms`,
    );
    report("batch_consume_per_s", measured.operations / measured.seconds, "events/s");
    assertBooks(
      "batch_consume",
      await checkBooks(setup.db.sql),
      BATCH_CUSTOMERS,
      total + BATCH_CUSTOMERS * HISTORY_PER_CUSTOMER,
    );
  } finally {
    await tearDown(setup);
  }
}

const PAIR_CLIENTS = 32;
const PAIR_CUSTOMERS = 1_000;
const HELD = 5;
const SETTLED = 3;

async function reserveSettle(context: BenchContext): Promise<void> {
  const setup = await setUp(context, PAIR_CUSTOMERS, "reserve");
  try {
    const { measured, total } = await measure(
      setup,
      "reserve_settle",
      "pair",
      PAIR_CLIENTS,
      context.options.consumeSeconds,
      async (phase, client, call) => {
        const held = await setup.api.reserve(
          randomOf(setup.customers),
          HELD,
          `bench:${phase}:${client}:${call}`,
        );
        const id = (held.body as { id?: unknown })?.id;
        if (held.status !== 201 || typeof id !== "number") throw unexpected("reserve", held);
        const settled = await setup.api.settle(id, SETTLED);
        if ((settled.body as { settled?: unknown })?.settled !== SETTLED) {
          throw unexpected("settle", settled);
        }
        return 1;
      },
    );
    report("reserve_settle_per_s", measured.operations / measured.seconds, "pairs/s");
    assertBooks(
      "reserve_settle",
      await checkBooks(setup.db.sql),
      PAIR_CUSTOMERS,
      total + PAIR_CUSTOMERS * HISTORY_PER_CUSTOMER,
    );
    const [holds] = await setup.db.sql<{ settled: number; other: number; spent: number }[]>`
      select count(*) filter (where status = 'settled' and settled_amount = ${SETTLED})::int
               as settled,
             count(*) filter (where status <> 'settled' or settled_amount <> ${SETTLED})::int
               as other,
             (select coalesce(-sum(amount), 0)::int from credits.ledger
               where kind = 'usage'
                 and coalesce(idempotency_key, '') not like 'bench-history:%') as spent
        from credits.reservations`;
    if (holds.settled !== total || holds.other !== 0 || holds.spent !== total * SETTLED) {
      throw new Error(
        `reserve_settle: ${JSON.stringify(holds)} for ${total} pairs of ${SETTLED} settled`,
      );
    }
  } finally {
    await tearDown(setup);
  }
}

export const apiBenches: Bench[] = [
  { name: "api_consume", run: apiConsume },
  { name: "batch_consume", run: batchConsume },
  { name: "reserve_settle", run: reserveSettle },
];
