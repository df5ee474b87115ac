-- migrate:up

-- Payments from providers' webhooks (sql/billing.sql applies them).

-- The webhook inbox: one row per provider event ID, whatever became of it. It holds the event in
-- Tally's provider-neutral shape (utils/providers/billing_event.ts), so that a replay needs no
-- TypeScript. Not user-owned (an event may name no known user yet): on Citus it stays a local
-- table of the coordinator, see docs/scaling.md.
--   status  processed  applied;
--           ignored    a type Tally does not act on (kept so that a repeat is a duplicate);
--           failed     could not be applied (unknown price, no matching user, a refund before
--                      its payment): kept for an admin to replay, and retried by itself when an
--                      event that it shares a reference with is applied (the checkout that
--                      names its user, the payment that it refunds).
create table billing.webhook_events (
  provider        text not null check (provider in ('stripe', 'creem')),
  event_id        text not null,
  type            text not null,
  event           jsonb not null,
  status          text not null check (status in ('processed', 'ignored', 'failed')),
  -- What the event refers to ('customer:cus_1', 'subscription:sub_1', 'payment:pi_1', ...): a
  -- failed event is retried when an event that shares one of these is applied.
  refs            text[] not null default '{}',
  user_id         uuid,
  error           text,
  attempts        integer not null default 0,
  received_at     timestamptz not null,
  last_attempt_at timestamptz,
  processed_at    timestamptz,
  primary key (provider, event_id)
);
create index webhook_events_failed_refs on billing.webhook_events using gin (refs)
  where status = 'failed';
create index webhook_events_failed on billing.webhook_events (received_at)
  where status = 'failed';

-- Out-of-order safety: the provider's time of the subscription event that last set the row.
alter table billing.subscriptions add column last_event_at timestamptz;

-- Which grants a payment made: the source key of its grant (package, monthly period) or the
-- prefix of its month slots' keys (lifetime, yearly), so that refunds and disputes find them all,
-- also the slots that the daily job made later.
alter table billing.payments add column grant_key text;
alter table billing.payments add column period_start timestamptz;

-- Every reference under which a provider may later name a payment (Stripe: checkout session,
-- payment intent, invoice, charge; Creem: order, transaction, checkout). Refunds and disputes
-- find their payment here.
create table billing.payment_refs (
  provider   text not null check (provider in ('stripe', 'creem')),
  ref        text not null,
  user_id    uuid not null,
  payment_id bigint not null,
  primary key (provider, ref),
  foreign key (user_id, payment_id) references billing.payments (user_id, id)
);

-- The checkouts Tally created (POST /api/checkout): whose and for which price, by the provider's
-- checkout reference. Stripe sends no line items with checkout.session.completed; the webhook
-- reads the price here, from Tally's own record, never from the session's metadata. Keyed by the
-- provider's reference, like payment_refs (a lookup table on Citus, docs/scaling.md).
create table billing.checkouts (
  provider     text not null check (provider in ('stripe', 'creem')),
  checkout_ref text not null,
  user_id      uuid not null references app.users (id),
  price_id     text not null references billing.prices (price_id),
  created_at   timestamptz not null default now(),
  primary key (provider, checkout_ref)
);

-- migrate:down

drop table billing.checkouts;

drop table billing.payment_refs;
alter table billing.payments drop column period_start;
alter table billing.payments drop column grant_key;
alter table billing.subscriptions drop column last_event_at;
drop table billing.webhook_events;
