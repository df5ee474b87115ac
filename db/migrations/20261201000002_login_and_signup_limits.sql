-- migrate:up

-- Issue 8, accounts. A login attempt is recorded before its password is checked (pending), so
-- that parallel requests cannot check more than the limit allows; each row now has an id of its
-- own, since attempts of one email may share a timestamp.
alter table app.login_failures drop constraint login_failures_pkey;
alter table app.login_failures
  add column attempt_id uuid not null default gen_random_uuid() primary key,
  add column pending boolean not null default false;
create index login_failures_email_failed_at on app.login_failures (email, failed_at);
create index login_failures_failed_at on app.login_failures (failed_at);
create index login_locks_locked_until on app.login_locks (locked_until);

-- One row per accepted sign-up, for SIGNUP_LIMIT_PER_HOUR; the daily run purges rows past the
-- hour. A sign-up whose client address is unknown counts as '::' (never the case behind
-- Deno.serve).
create table app.signup_log (
  address      inet not null,
  signed_up_at timestamptz not null
);
create index signup_log_address on app.signup_log (address, signed_up_at);
create index signup_log_signed_up_at on app.signup_log (signed_up_at);

-- migrate:down
drop table app.signup_log;
drop index app.login_locks_locked_until;
drop index app.login_failures_failed_at;
drop index app.login_failures_email_failed_at;
alter table app.login_failures drop column pending, drop column attempt_id;
delete from app.login_failures a using app.login_failures b
 where a.email = b.email and a.failed_at = b.failed_at and a.ctid > b.ctid;
alter table app.login_failures add primary key (email, failed_at);
