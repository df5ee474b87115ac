-- migrate:up

-- The daily run in batches (sql/credits_daily_run.sql): each run's record shows its progress,
-- its failed batches and their errors, and the run it continues after a crash.
--   users           users to do (counted when the run starts; null for a skipped run)
--   users_done      users whose batch committed, failed ones included
--   batches_done    batches committed
--   failed_batches  pieces of failed batches that failed again and were skipped
--   failed_users    users in those pieces (> 5 % of users: status 'degraded')
--   errors          [{range: [first user id, last user id], users, error}], one per skipped piece
--   status          running, done, degraded, failed (died part-way, continued by a later run),
--                   skipped (another run held the run; note names it)
--   resumed_from    the run this one continues from its last_key
--   last_key        the last user id of the last committed batch: where a continuation starts
alter table credits.daily_runs
  add column users integer,
  add column users_done integer not null default 0,
  add column batches_done integer not null default 0,
  add column failed_batches integer not null default 0,
  add column failed_users integer not null default 0,
  add column errors jsonb not null default '[]',
  add column status text not null default 'done'
    check (status in ('running', 'done', 'degraded', 'failed', 'skipped')),
  add column note text,
  add column resumed_from bigint references credits.daily_runs (id),
  add column last_key uuid,
  add column batch_size integer;
-- Runs before this migration finished in one transaction, or never wrote their counts.
update credits.daily_runs set status = 'failed' where finished_at is null;
create index daily_runs_running on credits.daily_runs (id) where status = 'running';

-- Operational events for the outbound webhooks (issue: ops.* events, section 9): a row per
-- event, read and sent later by the outbound dispatcher. The daily run writes
-- 'ops.daily_run_degraded' here; nothing reads it yet.
create table credits.ops_events (
  id         bigint generated always as identity primary key,
  kind       text not null,
  payload    jsonb not null,
  created_at timestamptz not null default clock_timestamp()
);

-- migrate:down

drop table credits.ops_events;
drop index credits.daily_runs_running;
alter table credits.daily_runs
  drop column users, drop column users_done, drop column batches_done,
  drop column failed_batches, drop column failed_users, drop column errors, drop column status,
  drop column note, drop column resumed_from, drop column last_key, drop column batch_size;
