-- migrate:up

-- Issue 10, the server-to-server API (CONTRACT.md section 8). Its JSON functions live in their
-- own schema, so that what /api/v1 may call is one list (sql/api_*.sql).
create schema if not exists api;

-- A customer is a user that the app names by its own id. Web users have none. The format is the
-- contract's (1 to 255 letters, digits and _ - . : @), checked here too so that no other writer
-- can store a name the API could never address.
alter table app.users
  add column external_id text unique
    constraint users_external_id_format check (external_id ~ '^[A-Za-z0-9_.:@-]{1,255}$');

-- An API customer may be created without an email; every other user has one (a web sign-up
-- always gives it). Still unique where present.
alter table app.users
  alter column email drop not null,
  add constraint users_email_or_external_id check (email is not null or external_id is not null);

-- What one use of a feature costs (plans.json "features"); a feature the file no longer lists is
-- kept inactive, like plans and packages.
create table billing.features (
  id       text primary key,
  name     text not null,
  credits  bigint not null check (credits > 0),
  position integer not null,
  active   boolean not null default true
);

-- plans.json "lowBalanceCredits": the threshold of the credits.low event (null: none).
alter table billing.settings
  add column low_balance_credits bigint check (low_balance_credits >= 0);

-- migrate:down

alter table billing.settings drop column low_balance_credits;
drop table billing.features;
alter table app.users drop constraint users_email_or_external_id;
alter table app.users alter column email set not null;
alter table app.users drop column external_id;
drop schema if exists api cascade;
