-- migrate:up

-- The closed sets of values (kinds, providers, statuses) as domains instead of table CHECK
-- constraints. Same rule, different cost: PostgreSQL reads a table's CHECK constraints back from
-- their stored text and prepares them for every INSERT or UPDATE statement it executes, and
-- checks them all on every updated row; a domain's check is prepared once per connection and runs
-- only where a value of the domain is written. The kind lists were the largest of them, on the
-- tables every webhook and every consumption writes (ledger, grants): about a sixth of the
-- database's time per webhook went to reading them back.
create domain credits.grant_kind as text check (value in (
  'signup_gift', 'free_monthly', 'subscription_period', 'subscription_monthly', 'lifetime_monthly',
  'trial', 'upgrade', 'package', 'daily_signin', 'adjustment', 'bonus'));
-- What a ledger entry records: a grant of one of the kinds above, or credits taken.
create domain credits.entry_kind as text check (value in (
  'signup_gift', 'free_monthly', 'subscription_period', 'subscription_monthly', 'lifetime_monthly',
  'trial', 'upgrade', 'package', 'daily_signin', 'adjustment', 'bonus',
  'usage', 'expiry', 'refund', 'dispute'));
create domain billing.provider as text check (value in ('stripe', 'creem'));
create domain billing.payment_kind as text check (value in ('package', 'lifetime', 'subscription'));
create domain billing.subscription_interval as text check (value in ('month', 'year'));
create domain billing.event_status as text check (value in ('processed', 'ignored', 'failed'));

-- Each ALTER rewrites its table and indexes once, under an exclusive lock (a column changed to a
-- domain with a check is rewritten, not only scanned): on a large database, run this migration
-- at a quiet moment.
alter table credits.grants
  drop constraint grants_kind_check,
  alter column kind type credits.grant_kind;
alter table credits.ledger
  drop constraint ledger_kind_check,
  alter column kind type credits.entry_kind;
alter table billing.payments
  drop constraint payments_provider_check,
  drop constraint payments_kind_check,
  alter column provider type billing.provider,
  alter column kind type billing.payment_kind;
alter table billing.subscriptions
  drop constraint subscriptions_provider_check,
  drop constraint subscriptions_interval_check,
  alter column provider type billing.provider,
  alter column interval type billing.subscription_interval;
alter table billing.webhook_events
  drop constraint webhook_events_provider_check,
  drop constraint webhook_events_status_check,
  alter column provider type billing.provider,
  alter column status type billing.event_status;
alter table billing.prices
  drop constraint prices_provider_check,
  alter column provider type billing.provider;
alter table billing.customers
  drop constraint customers_provider_check,
  alter column provider type billing.provider;
alter table billing.payment_refs
  drop constraint payment_refs_provider_check,
  alter column provider type billing.provider;
alter table billing.checkouts
  drop constraint checkouts_provider_check,
  alter column provider type billing.provider;
alter table billing.refunds
  drop constraint refunds_provider_check,
  alter column provider type billing.provider;
alter table billing.failed_event_refs
  alter column provider type billing.provider;

-- migrate:down

alter table billing.failed_event_refs alter column provider type text;
alter table billing.refunds
  alter column provider type text,
  add constraint refunds_provider_check check (provider in ('stripe', 'creem'));
alter table billing.checkouts
  alter column provider type text,
  add constraint checkouts_provider_check check (provider in ('stripe', 'creem'));
alter table billing.payment_refs
  alter column provider type text,
  add constraint payment_refs_provider_check check (provider in ('stripe', 'creem'));
alter table billing.customers
  alter column provider type text,
  add constraint customers_provider_check check (provider in ('stripe', 'creem'));
alter table billing.prices
  alter column provider type text,
  add constraint prices_provider_check check (provider in ('stripe', 'creem'));
alter table billing.webhook_events
  alter column provider type text,
  alter column status type text,
  add constraint webhook_events_provider_check check (provider in ('stripe', 'creem')),
  add constraint webhook_events_status_check check (status in ('processed', 'ignored', 'failed'));
alter table billing.subscriptions
  alter column provider type text,
  alter column interval type text,
  add constraint subscriptions_provider_check check (provider in ('stripe', 'creem')),
  add constraint subscriptions_interval_check check (interval in ('month', 'year'));
alter table billing.payments
  alter column provider type text,
  alter column kind type text,
  add constraint payments_provider_check check (provider in ('stripe', 'creem')),
  add constraint payments_kind_check check (kind in ('package', 'lifetime', 'subscription'));
alter table credits.ledger
  alter column kind type text,
  add constraint ledger_kind_check check (kind in (
    'signup_gift', 'free_monthly', 'subscription_period', 'subscription_monthly',
    'lifetime_monthly', 'trial', 'upgrade', 'package', 'daily_signin', 'adjustment', 'bonus',
    'usage', 'expiry', 'refund', 'dispute'));
alter table credits.grants
  alter column kind type text,
  add constraint grants_kind_check check (kind in (
    'signup_gift', 'free_monthly', 'subscription_period', 'subscription_monthly',
    'lifetime_monthly', 'trial', 'upgrade', 'package', 'daily_signin', 'adjustment', 'bonus'));
drop domain billing.event_status;
drop domain billing.subscription_interval;
drop domain billing.payment_kind;
drop domain billing.provider;
drop domain credits.entry_kind;
drop domain credits.grant_kind;
