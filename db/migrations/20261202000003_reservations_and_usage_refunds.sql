-- migrate:up

-- Holds and give-backs of the server-to-server API (docs/credit-rules.md#reservations):
--   reservation   credits taken off their grants, in spending order, and held for a caller;
--   release       held credits given back to their grants (a release, the unspent part of a
--                 settlement, or a reservation that reached its expiresAt);
--   usage_refund  credits of a usage given back to the grants the usage drew from.
-- A settlement is a release of the hold followed by a plain 'usage' entry that draws from the
-- same grants, so every usage, settled or not, is refunded the same way.
alter domain credits.entry_kind drop constraint entry_kind_check;
alter domain credits.entry_kind add constraint entry_kind_check check (value in (
  'signup_gift', 'free_monthly', 'subscription_period', 'subscription_monthly', 'lifetime_monthly',
  'trial', 'upgrade', 'package', 'daily_signin', 'adjustment', 'bonus',
  'usage', 'expiry', 'refund', 'dispute', 'reservation', 'release', 'usage_refund'));

-- The earlier entry an entry follows from: the reservation a release closes or a settlement's
-- usage spends, the usage a usage_refund gives back. No default: adding it rewrites nothing.
alter table credits.ledger add column origin_id bigint;

-- Entries that carry the caller's idempotency key: credits taken (usage, an admin's negative
-- adjustment, a reservation) and usage refunds. The unique index ledger_spend_key already covers
-- (user_id, kind, idempotency_key) for every kind.
alter table credits.ledger drop constraint ledger_check1;
alter table credits.ledger add constraint ledger_idempotency_key_kinds
  check (idempotency_key is null or kind in ('usage', 'adjustment', 'reservation', 'usage_refund'));

-- POST /api/v1/usage/{usageId}/refund names a usage by its id alone.
create index ledger_usage_id on credits.ledger (id) where kind = 'usage';
-- What has been given back of a usage, and what a reservation's entries are.
create index ledger_origin on credits.ledger (user_id, origin_id) where origin_id is not null;

-- One row per reservation. Its id is the id of its 'reservation' ledger entry, so the ledger
-- and the reservation name each other without another column.
create table credits.reservations (
  user_id         uuid not null references credits.balances (user_id),
  id              bigint not null,
  amount          bigint not null check (amount > 0),
  -- The grants the held credits came from, in spending order: [{"grant": id, "amount": n}].
  holds           jsonb not null,
  idempotency_key text not null,
  description     text,
  created_at      timestamptz not null,
  expires_at      timestamptz not null check (expires_at > created_at),
  status          text not null default 'open'
                    check (status in ('open', 'settled', 'released', 'expired')),
  closed_at       timestamptz,
  -- What the closing gave back to live grants (the release entry's amount); the rest of the
  -- hold, minus what a settlement spent, expired with its grants while held.
  returned        bigint check (returned >= 0),
  settled_amount  bigint check (settled_amount >= 0),
  usage_id        bigint,
  primary key (user_id, id),
  unique (user_id, idempotency_key),
  check ((status = 'open') = (closed_at is null)),
  check ((status = 'settled') = (settled_amount is not null))
);
-- POST /api/v1/reservations/{id}/... names a reservation by its id alone.
create index reservations_id on credits.reservations (id);
-- Open holds of a user that have reached their expiresAt (read on every spend of that user) and
-- of everybody (the daily run).
create index reservations_open on credits.reservations (user_id, expires_at) where status = 'open';
create index reservations_due on credits.reservations (expires_at) where status = 'open';

-- migrate:down

drop table credits.reservations;
drop index credits.ledger_origin;
drop index credits.ledger_usage_id;
alter table credits.ledger drop constraint ledger_idempotency_key_kinds;
alter table credits.ledger add constraint ledger_check1
  check (idempotency_key is null or kind in ('usage', 'adjustment'));
alter table credits.ledger drop column origin_id;
alter domain credits.entry_kind drop constraint entry_kind_check;
alter domain credits.entry_kind add constraint entry_kind_check check (value in (
  'signup_gift', 'free_monthly', 'subscription_period', 'subscription_monthly', 'lifetime_monthly',
  'trial', 'upgrade', 'package', 'daily_signin', 'adjustment', 'bonus',
  'usage', 'expiry', 'refund', 'dispute'));
