-- migrate:up

-- Refunds that a provider reports one by one (Creem's refund.created carries this refund's amount,
-- not the payment's cumulative refunded total as Stripe's charge.refunded does). A refund ID is
-- counted once into billing.payments.refunded_amount, whichever event delivers it: the key
-- (provider, refund_ref) makes a second delivery under another event ID change nothing. Keyed by
-- the provider's reference, like billing.payment_refs (a lookup table on Citus, docs/scaling.md).
create table billing.refunds (
  provider    text not null check (provider in ('stripe', 'creem')),
  refund_ref  text not null,
  user_id     uuid not null,
  payment_id  bigint not null,
  amount      bigint not null check (amount >= 0),
  refunded_at timestamptz not null,
  primary key (provider, refund_ref),
  foreign key (user_id, payment_id) references billing.payments (user_id, id)
);

-- migrate:down

drop table billing.refunds;
