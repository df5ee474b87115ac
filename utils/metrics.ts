// The Prometheus metrics of one app (docs/api.md#metrics, contract section 10): each createApp
// builds its own registry, so several apps in one process (the tests) never share counters.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { z } from "zod";
import type { Sql } from "../db/client.ts";

/** How a webhook was answered: billing.apply_event's result, or rejected (400), or error. */
export type WebhookResult = "processed" | "duplicate" | "ignored" | "failed" | "rejected" | "error";

/** app.metrics_snapshot()'s answer (sql/app_metrics.sql). */
const Snapshot = z.object({
  lastSuccessAt: z.number().nullable(),
  lastSuccessDurationSeconds: z.number().nullable(),
  failedBatches: z.number(),
  inboxFailed: z.number(),
});

export type Metrics = {
  registry: Registry;
  /** The Prometheus text, the database's gauges read just before. */
  scrape(): Promise<string>;
  httpRequests: Counter<"method" | "route" | "status">;
  httpDuration: Histogram<"method" | "route">;
  webhooks: Counter<"provider" | "result">;
  consumes: Counter<"result">;
};

export function createMetrics(sql: Sql): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const httpRequests = new Counter({
    name: "tally_http_requests_total",
    help: "HTTP requests answered, by method, route pattern and status",
    labelNames: ["method", "route", "status"] as const,
    registers,
  });
  const httpDuration = new Histogram({
    name: "tally_http_request_duration_seconds",
    help: "Time to answer an HTTP request, by method and route pattern",
    labelNames: ["method", "route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const webhooks = new Counter({
    name: "tally_webhooks_total",
    help: "Provider webhooks received, by provider and how they were answered",
    labelNames: ["provider", "result"] as const,
    registers,
  });
  const consumes = new Counter({
    name: "tally_consumes_total",
    help: "Consumptions (/api/me and /api/v1), by result: ok or the error code answered",
    labelNames: ["result"] as const,
    registers,
  });

  // The database's numbers, set from one read of app.metrics_snapshot() per scrape (scrape()).
  const gauge = (name: string, help: string) => new Gauge({ name, help, registers });
  const runDuration = gauge(
    "tally_daily_run_duration_seconds",
    "Duration of the last successful daily run (done or degraded)",
  );
  const lastSuccess = gauge(
    "tally_daily_run_last_success_timestamp_seconds",
    "When the last successful daily run finished, Unix seconds",
  );
  // Read from the runs' table, a sum that only grows: a counter by meaning (_total), set as a
  // gauge because the database, not this process, counts.
  const failedBatches = gauge(
    "tally_daily_run_failed_batches_total",
    "Failed batches summed over every daily run",
  );
  const inboxFailed = gauge(
    "tally_webhook_inbox_failed",
    "Webhook events recorded as failed, waiting for a replay",
  );
  const setOrClear = (metric: Gauge, value: number | null) =>
    value === null ? metric.reset() : metric.set(value);

  async function scrape(): Promise<string> {
    const [row] = await sql<{ snapshot: unknown }[]>`select app.metrics_snapshot() as snapshot`;
    const snapshot = Snapshot.parse(row.snapshot);
    setOrClear(runDuration, snapshot.lastSuccessDurationSeconds);
    setOrClear(lastSuccess, snapshot.lastSuccessAt);
    failedBatches.set(snapshot.failedBatches);
    inboxFailed.set(snapshot.inboxFailed);
    return await registry.metrics();
  }

  return { registry, scrape, httpRequests, httpDuration, webhooks, consumes };
}
