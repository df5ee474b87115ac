-- migrate:up

-- Tally's tables. Functions and triggers live in sql/ and are reloaded on every migrate.
--
-- Keying: every table that belongs to a user has user_id as the first column of its primary key,
-- so that it can be distributed by user_id on Citus (docs/scaling.md). Global uniqueness that
-- does not include user_id (grant source keys, provider references) is kept in small lookup
-- tables or columns named in docs/scaling.md.

create extension if not exists pgcrypto;

create schema if not exists app;
create schema if not exists credits;
create schema if not exists billing;

-- ---------------------------------------------------------------------------------------------
-- Accounts

create table app.users (
  id            uuid primary key default gen_random_uuid(),
  email         text not null unique,
  created_at    timestamptz not null default now(),
  password_hash text,
  name          text not null default ''
);

-- A session token is never stored: only its SHA-256. The cookie carries user_id too, so that a
-- lookup is routed by user_id like every other user-owned row.
create table app.sessions (
  user_id      uuid not null references app.users (id) on delete cascade,
  token_hash   bytea not null,
  created_at   timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  expires_at   timestamptz not null,
  primary key (user_id, token_hash)
);
create index sessions_expires_at on app.sessions (expires_at);

-- Failed logins per email (whether or not an account exists, so the lock reveals nothing).
create table app.login_failures (
  email     text not null,
  failed_at timestamptz not null,
  primary key (email, failed_at)
);

create table app.login_locks (
  email        text primary key,
  locked_until timestamptz not null
);

-- ---------------------------------------------------------------------------------------------
-- Catalogue: loaded from plans.json at start-up by billing.load_plans(). Rows are never deleted:
-- a plan, package or price missing from the file becomes inactive, so history keeps its meaning.

create table billing.settings (
  singleton             boolean primary key default true check (singleton),
  currency              text not null,
  signup_gift_credits   bigint not null default 0 check (signup_gift_credits >= 0),
  signup_gift_days      integer check (signup_gift_days > 0),
  daily_signin_credits  bigint not null default 0 check (daily_signin_credits >= 0),
  daily_signin_days     integer check (daily_signin_days > 0),
  loaded_at             timestamptz not null default now()
);

create table billing.plans (
  id                  text primary key,
  name                text not null,
  kind                text not null check (kind in ('free', 'subscription', 'lifetime')),
  monthly_credits     bigint not null check (monthly_credits >= 0),
  credits_expire_days integer check (credits_expire_days > 0),
  trial_credits       bigint check (trial_credits >= 0),
  position            integer not null default 0,
  active              boolean not null default true
);
-- Exactly one active free plan: the loader enforces "exactly", this index "at most".
create unique index plans_one_active_free on billing.plans ((true)) where kind = 'free' and active;

create table billing.packages (
  id           text primary key,
  name         text not null,
  credits      bigint not null check (credits > 0),
  expires_days integer check (expires_days > 0),
  position     integer not null default 0,
  active       boolean not null default true
);

create table billing.prices (
  price_id   text primary key,
  provider   text not null check (provider in ('stripe', 'creem')),
  plan_id    text references billing.plans (id),
  package_id text references billing.packages (id),
  interval   text not null check (interval in ('month', 'year', 'once')),
  amount     bigint not null check (amount >= 0),
  currency   text not null,
  active     boolean not null default true,
  check ((plan_id is null) <> (package_id is null)),
  check (package_id is null or interval = 'once')
);

-- ---------------------------------------------------------------------------------------------
-- What a user has bought. The payments issue fills these from webhooks; the credit functions
-- read them to decide who is on a paid plan and which month slots are due.

create table billing.subscriptions (
  user_id              uuid not null references app.users (id),
  id                   bigint generated always as identity,
  provider             text not null check (provider in ('stripe', 'creem')),
  provider_ref         text not null,
  plan_id              text not null references billing.plans (id),
  price_id             text references billing.prices (price_id),
  interval             text not null check (interval in ('month', 'year')),
  status               text not null,
  current_period_start timestamptz not null,
  current_period_end   timestamptz not null check (current_period_end > current_period_start),
  cancel_at_period_end boolean not null default false,
  canceled_at          timestamptz,
  created_at           timestamptz not null default now(),
  updated_at           timestamptz not null default now(),
  primary key (user_id, id),
  unique (provider, provider_ref)
);
create index subscriptions_paid_until on billing.subscriptions (current_period_end, user_id)
  where status in ('active', 'trialing', 'past_due');

-- The provider's customer for a user (Stripe cus_..., Creem cust_...): set by checkout or by the
-- first webhook that names it; read by checkout (to reuse it) and the billing portal.
create table billing.customers (
  user_id      uuid not null references app.users (id),
  provider     text not null check (provider in ('stripe', 'creem')),
  customer_ref text not null,
  created_at   timestamptz not null default now(),
  primary key (user_id, provider),
  unique (provider, customer_ref)
);

-- One row per payment the provider reports (a package, a lifetime purchase, a subscription
-- invoice). Refunds and disputes are accumulated on the row that they concern.
create table billing.payments (
  user_id         uuid not null references app.users (id),
  id              bigint generated always as identity,
  provider        text not null check (provider in ('stripe', 'creem')),
  provider_ref    text not null,
  price_id        text references billing.prices (price_id),
  kind            text not null check (kind in ('package', 'lifetime', 'subscription')),
  subscription_id bigint,
  amount          bigint not null check (amount >= 0),
  currency        text not null,
  paid_at         timestamptz not null,
  refunded_amount bigint not null default 0 check (refunded_amount >= 0),
  refunded_at     timestamptz,
  disputed_at     timestamptz,
  primary key (user_id, id),
  unique (provider, provider_ref)
);
-- A lifetime purchase is a plan for as long as it is not refunded in full nor disputed.
create index payments_lifetime on billing.payments (user_id, paid_at)
  where kind = 'lifetime' and disputed_at is null;

-- ---------------------------------------------------------------------------------------------
-- Credits

-- One row per user: the balance that the ledger shows (grants not yet expired by the ledger).
-- It is the lock every change of a user's credits takes first. Filled by a trigger on users.
create table credits.balances (
  user_id    uuid primary key references app.users (id) on delete cascade,
  balance    bigint not null default 0 check (balance >= 0),
  updated_at timestamptz not null default now()
) with (fillfactor = 50);
-- Half of each page is kept free so that every update of a balance is HOT (no index entry, no
-- other page), even when monthly distribution updates every row of a page in one statement: the
-- new versions fit beside the old ones, which later page pruning or vacuum reclaims.

-- Grants carry no foreign key to users: every insert goes through a function that has already
-- locked (or, in batches, updated) the user's balance row, which has one. That saves an index
-- probe per grant, which matters for monthly distribution over millions of users.
create table credits.grants (
  user_id     uuid not null,
  id          bigint generated always as identity,
  kind        text not null check (kind in (
                'signup_gift', 'free_monthly', 'subscription_period', 'subscription_monthly',
                'lifetime_monthly', 'trial', 'upgrade', 'package', 'daily_signin', 'adjustment',
                'bonus')),
  amount      bigint not null check (amount > 0),
  remaining   bigint not null check (remaining between 0 and amount),
  expires_at  timestamptz,
  -- Set by the expiry (credits._expire_locked, credits.expire_due) once expires_at has passed,
  -- whether credits were left or not; remaining is 0 from then on.
  expired_at  timestamptz,
  source_key  text not null unique,
  description text,
  created_at  timestamptz not null default now(),
  primary key (user_id, id)
) with (fillfactor = 90);
-- No index mentions remaining, and pages keep 10% free: a consumption's update of remaining is
-- then a HOT update (heap only, no index entries), which about halves the writes of the hottest
-- path. Open grants are those whose expiry has not been recorded (expired_at is null); a grant
-- spent down to 0 stays open until then, and queries filter remaining > 0 on the heap row.
-- Spend order: soonest expiry first, never-expiring last, oldest first on ties.
create index grants_spendable on credits.grants (user_id, expires_at nulls last, id)
  where expired_at is null;
-- What the expiry job has to visit.
create index grants_expiring on credits.grants (expires_at)
  where expired_at is null and expires_at is not null;

-- Append-only: a trigger (sql/ledger.sql) refuses updates and deletes.
create table credits.ledger (
  user_id         uuid not null,
  id              bigint generated always as identity,
  kind            text not null check (kind in (
                    'signup_gift', 'free_monthly', 'subscription_period', 'subscription_monthly',
                    'lifetime_monthly', 'trial', 'upgrade', 'package', 'daily_signin',
                    'adjustment', 'bonus', 'usage', 'expiry', 'refund', 'dispute')),
  amount          bigint not null check (amount <> 0),
  balance_after   bigint not null check (balance_after >= 0),
  description     text,
  created_at      timestamptz not null default now(),
  -- What caused it: the grant it adds, expires or claws back ...
  grant_id        bigint,
  -- ... or, for credits taken (usage, an admin's negative adjustment), the caller's idempotency
  -- key and the grants it drew from.
  idempotency_key text,
  draws           jsonb,
  -- For refunds and disputes: the provider's reference of the refund or dispute.
  reference       text,
  primary key (user_id, id),
  check (kind <> 'usage' or idempotency_key is not null),
  check (idempotency_key is null or kind in ('usage', 'adjustment'))
);
-- One entry per (user, kind, key) of credits taken by credits._spend. The predicate holds for
-- every lookup by key, so a generic plan can use it whatever the kind parameter is.
create unique index ledger_spend_key on credits.ledger (user_id, kind, idempotency_key)
  where idempotency_key is not null;
-- A refund or dispute removes credits from a grant once per provider reference.
create unique index ledger_clawback_key on credits.ledger (user_id, grant_id, kind, reference)
  where kind in ('refund', 'dispute');

-- One row per run of credits.run_daily().
create table credits.daily_runs (
  id          bigint generated always as identity primary key,
  run_at      timestamptz not null,
  started_at  timestamptz not null default clock_timestamp(),
  finished_at timestamptz,
  expired     integer,
  granted     integer,
  duration_ms integer,
  trigger     text not null default 'scheduler'
);

-- migrate:down

drop schema credits cascade;
drop schema billing cascade;
drop schema app cascade;
