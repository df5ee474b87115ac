-- What GET /metrics reads from the database at scrape time (routes/metrics.ts, docs/api.md#metrics).

-- app.metrics_snapshot()
-- The daily run's and the webhook inbox's numbers for Prometheus, in one read.
-- Inputs: none.
-- Effects: none (reads credits.daily_runs and billing.webhook_events).
-- Returns: jsonb {"lastSuccessAt": epoch seconds or null, "lastSuccessDurationSeconds": seconds
--   or null, "failedBatches": failed batches summed over every run, "inboxFailed": webhook events
--   recorded as failed}. A run is a success when it finished as done or degraded (a degraded run
--   granted everyone outside its failed batches; the failed batches count says the rest).
-- Errors: none. Idempotency key: none (read-only).
-- Locks: none; plain reads, a scrape never waits for a run or a webhook.
create function app.metrics_snapshot() returns jsonb
language sql stable as $$
  select jsonb_build_object(
    'lastSuccessAt', extract(epoch from last.finished_at),
    'lastSuccessDurationSeconds', last.duration_ms / 1000.0,
    'failedBatches', (select coalesce(sum(failed_batches), 0) from credits.daily_runs),
    'inboxFailed', (select count(*) from billing.webhook_events where status = 'failed'))
  from (select null) as always
  left join lateral (
    select finished_at, duration_ms from credits.daily_runs
    where status in ('done', 'degraded') and finished_at is not null
    order by finished_at desc limit 1) as last on true
$$;
