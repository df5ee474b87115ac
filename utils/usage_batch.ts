// Consumptions through api.usage_batch: the batch route's one call, and single consumptions
// (POST /api/v1/customers/{id}/consume) coalesced so that those arriving together share one SQL
// call and one commit. One commit per request caps a 2-core machine near its fsync rate; a
// group commit does not. Each event stays its own all-or-nothing consumption (the SQL applies or
// refuses each on its own), and each request gets its own event's answer.
import type { Sql } from "../db/client.ts";
import { isTransient } from "../db/client.ts";
import { createCoalescer } from "./coalescer.ts";

export type UsageEvent = {
  customer: string;
  amount?: number;
  feature?: string;
  quantity?: number;
  idempotencyKey: string;
  description?: string;
};

/** api.usage_batch's statuses (sql/api_spending.sql). */
export type UsageStatus =
  | "ok"
  | "insufficient_credits"
  | "customer_not_found"
  | "unknown_feature"
  | "idempotency_key_reused"
  | "invalid";

export type UsageResult = {
  idempotencyKey: string;
  status: UsageStatus;
  balance?: number;
  usageId?: number;
};

/** One call of api.usage_batch: one answer per event, in order. */
export async function usageBatch(sql: Sql, events: UsageEvent[]): Promise<UsageResult[]> {
  const [row] = await sql<{ results: UsageResult[] }[]>`
    select api.usage_batch(${sql.json(events)}) as results`;
  return row.results;
}

// A coalesced group's outcome per request: its answer, or the error of its own call.
type Outcome = { result: UsageResult } | { error: unknown };

// Enough to use the pool's connections without taking all of them from the other routes.
const COALESCING = { maxBatch: 500, maxInFlight: 4 };

const consumers = new WeakMap<Sql, (event: UsageEvent) => Promise<Outcome>>();

/**
 * Runs a group; if the group's one call fails for a reason other than a lost database (say one
 * event's row breaks a constraint), each event is tried on its own, so one bad request never
 * fails the others.
 */
async function runGroup(sql: Sql, events: UsageEvent[]): Promise<Outcome[]> {
  try {
    return (await usageBatch(sql, events)).map((result) => ({ result }));
  } catch (error) {
    if (events.length === 1 || isTransient(error)) return events.map(() => ({ error }));
    return await Promise.all(
      events.map((event) =>
        usageBatch(sql, [event]).then(([result]) => ({ result }), (error) => ({ error }))
      ),
    );
  }
}

/** One consumption, answered from the group it was coalesced into. */
export async function consumeCoalesced(sql: Sql, event: UsageEvent): Promise<UsageResult> {
  let consume = consumers.get(sql);
  if (!consume) {
    consume = createCoalescer((events: UsageEvent[]) => runGroup(sql, events), COALESCING);
    consumers.set(sql, consume);
  }
  const outcome = await consume(event);
  if ("error" in outcome) throw outcome.error;
  return outcome.result;
}
