-- Refunds and disputes: a payment's grants found and their credits taken back. Handlers'
-- shared contract and lock order: sql/billing_events.sql.

-- billing._payment_of(p_provider, p_event)
-- Returns the payment a refund or dispute names (by any of its references), its row locked, after
-- locking its user's balance row first (sql/credits.sql's lock order).
-- Errors: BL001 when no payment is known under those references (yet: the event is retried when
--   the payment arrives).
create function billing._payment_of(p_provider billing.provider, p_event jsonb,
                                    out user_id uuid, out payment_id bigint, out amount bigint,
                                    out refunded_amount bigint, out grant_key text)
language plpgsql
as $$
begin
  select r.user_id, r.payment_id into user_id, payment_id
    from billing.payment_refs r
   where r.provider = p_provider
     and r.ref in (select jsonb_array_elements_text(p_event -> 'paymentRefs'))
   limit 1;
  if not found then
    perform billing.raise_failure(format('no %s payment known as %s', p_provider,
                                         p_event -> 'paymentRefs'));
  end if;
  perform credits.lock_batch_shared();
  perform 1 from credits.balances b where b.user_id = _payment_of.user_id for update;
  select p.amount, p.refunded_amount, p.grant_key into amount, refunded_amount, grant_key
    from billing.payments p
   where p.user_id = _payment_of.user_id and p.id = _payment_of.payment_id
     for update;
end
$$;

-- billing._claw_back(p_user_id, p_grant_ids, p_amounts, p_kind, p_reference, p_now)
-- Effects: takes up to p_amounts[i] unspent credits from grant p_grant_ids[i] of the user, never
--   more than the grant has left (so the balance never goes negative), lowers the balance, and
--   appends one ledger entry of p_kind ('refund' or 'dispute') per grant it took from. Expiries
--   due at p_now are recorded first. Set-based.
-- Returns the credits removed. Idempotency key: (user, grant, kind, p_reference), which the
--   ledger's unique index enforces; a repeat takes nothing.
-- Locks: the batch lock (shared), then the user's balance row, then the grants.
create function billing._claw_back(p_user_id uuid, p_grant_ids bigint[], p_amounts bigint[],
                                   p_kind credits.entry_kind, p_reference text,
                                   p_now timestamptz)
returns bigint
language plpgsql
as $$
declare
  v_removed bigint;
begin
  perform credits.lock_batch_shared();
  perform 1 from credits.balances where user_id = p_user_id for update;
  perform credits._expire_locked(p_user_id, p_now);
  with wanted as (
    select w.grant_id, w.amount from unnest(p_grant_ids, p_amounts) as w (grant_id, amount)
     where w.amount > 0
  ), picked as (
    select g.id, least(g.remaining, w.amount) as take
      from credits.grants g
      join wanted w on w.grant_id = g.id
     where g.user_id = p_user_id and g.remaining > 0
       and (g.expires_at is null or g.expires_at > p_now)
       and not exists (select 1 from credits.ledger l
                        where l.user_id = p_user_id and l.grant_id = g.id and l.kind = p_kind
                          and l.reference = p_reference)
  ), taken as (
    update credits.grants g
       set remaining = g.remaining - p.take
      from picked p
     where g.user_id = p_user_id and g.id = p.id
    returning g.id, p.take
  ), ordered as (
    select id, take, sum(take) over (order by id) as running, sum(take) over () as total
      from taken
  ), balance as (
    update credits.balances b
       set balance = b.balance - (select max(total) from ordered), updated_at = now()
     where b.user_id = p_user_id and exists (select 1 from ordered)
    returning b.balance
  ), entries as (
    insert into credits.ledger (user_id, kind, amount, balance_after, description, grant_id,
                                reference)
    select p_user_id, p_kind, -o.take, b.balance + o.total - o.running,
           credits.kind_label(p_kind), o.id, p_reference
      from ordered o cross join balance b
     order by o.running
    returning amount
  )
  select coalesce(-sum(amount), 0) into v_removed from entries;
  return v_removed;
end
$$;

-- billing._payment_grants(p_user_id, p_grant_key): the grants a payment made: its grant key, or
-- the month slots under it (also those that the daily job made after the payment). Reads only.
create function billing._payment_grants(p_user_id uuid, p_grant_key text)
returns table (grant_id bigint, amount bigint)
language sql stable
as $$
  select g.id, g.amount from credits.grants g
   where g.user_id = p_user_id and p_grant_key is not null
     and (g.source_key = p_grant_key or starts_with(g.source_key, p_grant_key || ':'))
$$;

-- billing._refund_shares(p_user_id, p_grant_key, p_refunded, p_paid)
-- Returns, per grant of a payment, what a refunded total of p_refunded out of p_paid still has to
--   take from it: its share of round(G × R ÷ P), G the credits of all the payment's grants,
--   apportioned by largest remainder (so the shares add up to the rounded total, where rounding
--   each month slot alone would not), minus what refunds already took from that grant. G counts
--   each grant at its amount (a month slot's worth): a yearly slot the daily job made after an
--   earlier partial refund carries that refund's share as a refund entry already
--   (credits.due_monthly_grants), so only the further share is taken here.
-- Inputs: the caller holds the user's balance row (no refund of the user runs meanwhile).
-- Reads only.
create function billing._refund_shares(p_user_id uuid, p_grant_key text, p_refunded bigint,
                                       p_paid bigint)
returns table (grant_id bigint, amount bigint)
language sql stable
as $$
  with exact as (
    select g.grant_id, g.amount::numeric * p_refunded / p_paid as share,
           round(sum(g.amount) over ()::numeric * p_refunded / p_paid) as total
      from billing._payment_grants(p_user_id, p_grant_key) g
  ), ranked as (
    select e.grant_id, floor(e.share) as base, e.total,
           sum(floor(e.share)) over () as base_total,
           row_number() over (order by e.share - floor(e.share) desc, e.grant_id) as place
      from exact e
  )
  select r.grant_id,
         (r.base + case when r.place <= r.total - r.base_total then 1 else 0 end
          - coalesce((select -sum(l.amount) from credits.ledger l
                       where l.user_id = p_user_id and l.grant_id = r.grant_id
                         and l.kind = 'refund'), 0))::bigint
    from ranked r
$$;

-- refund: the payment's refunded total becomes R (refundedTotal, the provider's cumulative
--   figure, or the previous total + amount), capped at the payment; the payment's grants lose
--   round(G × R ÷ P) in all, less what earlier refunds took (billing._refund_shares), each at
--   most what it has left. Any refund ends a lifetime purchase (its later slots, its plan);
--   the year's later slots then shrink to round(monthlyCredits × (P − R) ÷ P), and end when
--   R = P (credits.due_monthly_grants).
-- Idempotency: a cumulative figure never lowers R (a late, older figure changes nothing); a
--   refund reported by its own amount counts once per (provider, refundRef) in billing.refunds.
--   The credits taken: the ledger references billing.refund_reference(payment, R).
-- Errors: BL001 when no payment is known under its references (billing._payment_of; retried
--   when the payment arrives).
-- Locks: billing._payment_of's (batch lock shared, balance row, payment row), then the grants.
create function billing._apply_refund(p_provider billing.provider, p_event jsonb, p_now timestamptz)
returns uuid
language plpgsql
as $$
declare
  v_payment record;
  v_total bigint;
begin
  select * into v_payment from billing._payment_of(p_provider, p_event);
  if p_event ->> 'refundedTotal' is null then
    insert into billing.refunds (provider, refund_ref, user_id, payment_id, amount, refunded_at)
    values (p_provider, p_event ->> 'refundRef', v_payment.user_id, v_payment.payment_id,
            greatest(0, coalesce((p_event ->> 'amount')::bigint, 0)), p_now)
    on conflict (provider, refund_ref) do nothing;
    if not found then
      return v_payment.user_id;
    end if;
  end if;
  v_total := least(v_payment.amount, case
    when p_event ->> 'refundedTotal' is not null
      then greatest(v_payment.refunded_amount, (p_event ->> 'refundedTotal')::bigint)
    else v_payment.refunded_amount + greatest(0, coalesce((p_event ->> 'amount')::bigint, 0))
  end);
  if v_total <= v_payment.refunded_amount then
    return v_payment.user_id;
  end if;
  update billing.payments
     set refunded_amount = v_total,
         refunded_at = case when v_total >= amount then coalesce(refunded_at, p_now)
                            else refunded_at end
   where user_id = v_payment.user_id and id = v_payment.payment_id;
  if v_payment.amount > 0 then
    perform billing._claw_back(
              p_user_id => v_payment.user_id, p_grant_ids => array_agg(s.grant_id),
              p_amounts => array_agg(s.amount), p_kind => 'refund',
              p_reference => billing.refund_reference(v_payment.payment_id, v_total),
              p_now => p_now)
       from billing._refund_shares(v_payment.user_id, v_payment.grant_key, v_total,
                                   v_payment.amount) s
     having count(*) > 0;
  end if;
  return v_payment.user_id;
end
$$;

-- dispute: marks the payment disputed (which ends a lifetime purchase and a yearly payment's
--   later slots) and takes every unspent credit of its grants, once per dispute.
-- Idempotency key: the ledger reference billing.dispute_reference(disputeRef), per grant
--   (billing._claw_back); disputed_at keeps the first time.
-- Errors: BL001 when no payment is known under its references (billing._payment_of).
-- Locks: billing._payment_of's (batch lock shared, balance row, payment row), then the grants.
create function billing._apply_dispute(p_provider billing.provider,
                                       p_event jsonb, p_now timestamptz)
returns uuid
language plpgsql
as $$
declare
  v_payment record;
begin
  select * into v_payment from billing._payment_of(p_provider, p_event);
  update billing.payments set disputed_at = coalesce(disputed_at, p_now)
   where user_id = v_payment.user_id and id = v_payment.payment_id;
  perform billing._claw_back(
            p_user_id => v_payment.user_id, p_grant_ids => array_agg(g.grant_id),
            p_amounts => array_agg(g.amount), p_kind => 'dispute',
            p_reference => billing.dispute_reference(p_event ->> 'disputeRef'), p_now => p_now)
     from billing._payment_grants(v_payment.user_id, v_payment.grant_key) g
   having count(*) > 0;
  return v_payment.user_id;
end
$$;
