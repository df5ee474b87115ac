-- Credits taken away in spend order: consumption, an admin's negative adjustment and a
-- reservation's hold, one function (credits._spend). Locks as sql/credits.sql's header.

-- credits._spend(p_user_id, p_amount, p_kind, p_idempotency_key, p_description, p_now)
-- The one place that takes credits away from one user in spend order: consume ('usage'), an
-- admin's negative adjustment (credits.adjust_down, 'adjustment') and a hold (credits.reserve,
-- 'reservation') are this function; credits.consume_batch applies the same order to many.
-- Effects: records the due expiries and reservation releases of the user at p_now, then takes
--   p_amount credits from the spendable grants, soonest expiry first (never-expiring last),
--   oldest first on ties; lowers
--   the balance; appends one ledger entry of kind p_kind that lists the grants drawn from.
-- Returns: the balance after. Idempotency key: (p_user_id, p_kind, p_idempotency_key); a repeat
--   with the same amount returns the first call's balance-after and changes nothing; with
--   another amount it raises CR002 and changes nothing.
-- Errors: 22023 for a non-positive amount or an empty key; 23503 for an unknown user; CR001 when
--   the balance is short, and then nothing is recorded (the key stays unused); CR002 for a key
--   already used with another amount.
-- Locks: the user's balance row, then (by updating) the grants it draws from.
-- Cost: the hot path of the API. One index probe for due reservations, then four statements when the first grant in spend order covers the
--   amount (lock and read the balance; look up the key; read that grant; update it, the balance
--   and the ledger in one statement), one more when several grants are drawn from. The first
--   open grant in spend order is also the soonest to expire, so reading it tells whether an
--   expiry is due; the expiry statement runs only then.
create function credits._spend(
  p_user_id uuid,
  p_amount bigint,
  p_kind credits.entry_kind,
  p_idempotency_key text,
  p_description text,
  p_now timestamptz
) returns bigint
language plpgsql
as $$
declare
  v_balance bigint;
  v_drawn bigint;
  v_first bigint;
  v_first_remaining bigint;
  v_first_expires timestamptz;
  v_first_amount bigint;
begin
  if p_amount is null or p_amount <= 0 then
    perform credits.raise_invalid('amount must be a positive number of credits');
  end if;
  if p_idempotency_key is null or p_idempotency_key = '' then
    perform credits.raise_invalid('an idempotency key is required');
  end if;

  select b.balance into v_balance from credits.balances b where b.user_id = p_user_id for update;
  if not found then
    perform credits.raise_unknown_user(p_user_id);
  end if;

  -- Under the balance row's lock, so a concurrent first use of the key has committed (or not).
  select l.balance_after, -l.amount into v_drawn, v_first_amount
    from credits.ledger l
   where l.user_id = p_user_id and l.kind = p_kind and l.idempotency_key = p_idempotency_key;
  if found then
    if v_first_amount <> p_amount then
      perform credits.raise_key_reused(p_idempotency_key, v_first_amount, p_amount);
    end if;
    return v_drawn;
  end if;

  -- A reservation past its expiresAt gives its holds back before anything is spent.
  if exists (select 1 from credits.reservations r
              where r.user_id = p_user_id and r.status = 'open' and r.expires_at <= p_now) then
    perform credits._expire_locked(p_user_id, p_now);
    select b.balance into v_balance from credits.balances b where b.user_id = p_user_id;
  end if;

  loop
    select g.id, g.remaining, g.expires_at into v_first, v_first_remaining, v_first_expires
      from credits.grants g
     where g.user_id = p_user_id and g.expired_at is null and g.remaining > 0
     order by g.expires_at nulls last, g.id
     limit 1;
    exit when v_first_expires is null or v_first_expires > p_now;
    -- The soonest grant has expired: record that (and any other due expiry), then look again.
    perform credits._expire_locked(p_user_id, p_now);
    select b.balance into v_balance from credits.balances b where b.user_id = p_user_id;
  end loop;

  if v_balance < p_amount then
    raise exception using errcode = 'CR001',
      message = format('insufficient credits: balance %s, requested %s', v_balance, p_amount);
  end if;

  if v_first_remaining >= p_amount then
    -- The usual case: one grant covers it.
    with drawn as (
      update credits.grants g set remaining = g.remaining - p_amount
       where g.user_id = p_user_id and g.id = v_first
    ), balance as (
      update credits.balances b set balance = b.balance - p_amount, updated_at = now()
       where b.user_id = p_user_id
      returning b.balance
    )
    insert into credits.ledger
      (user_id, kind, amount, balance_after, description, created_at, idempotency_key, draws)
    select p_user_id, p_kind, -p_amount, b.balance, p_description, p_now, p_idempotency_key,
           jsonb_build_array(jsonb_build_object('grant', v_first, 'amount', p_amount))
      from balance b
    returning balance_after into v_balance;
    return v_balance;
  end if;

  with ordered as (
    select g.id, g.remaining,
           sum(g.remaining) over (order by g.expires_at nulls last, g.id) as running
      from credits.grants g
     where g.user_id = p_user_id and g.expired_at is null and g.remaining > 0
       and (g.expires_at is null or g.expires_at > p_now)
  ), picked as (
    select id, least(remaining, p_amount - (running - remaining)) as take, running
      from ordered
     where running - remaining < p_amount
  ), drawn as (
    update credits.grants g
       set remaining = g.remaining - p.take
      from picked p
     where g.user_id = p_user_id and g.id = p.id
    returning g.id, p.take, p.running
  ), summed as (
    select sum(take) as total,
           jsonb_agg(jsonb_build_object('grant', id, 'amount', take) order by running) as draws
      from drawn
  ), balance as (
    update credits.balances b set balance = b.balance - p_amount, updated_at = now()
      from summed s
     where b.user_id = p_user_id
    returning b.balance, s.total, s.draws
  ), entry as (
    insert into credits.ledger
      (user_id, kind, amount, balance_after, description, created_at, idempotency_key, draws)
    select p_user_id, p_kind, -p_amount, b.balance, p_description, p_now, p_idempotency_key,
           b.draws
      from balance b
    returning balance_after
  )
  select e.balance_after, b.total into v_balance, v_drawn from entry e, balance b;

  if v_drawn is distinct from p_amount then
    -- The balance row and the grants disagree: refuse (the exception undoes this statement)
    -- rather than keep a wrong ledger.
    raise exception using errcode = 'XX000',
      message = format('credits of user %s are inconsistent: drew %s of %s', p_user_id,
                       coalesce(v_drawn, 0), p_amount);
  end if;
  return v_balance;
end
$$;

-- credits.consume(p_user_id, p_amount, p_idempotency_key, p_description, p_now)
-- docs/sql.md: credits._spend with ledger kind 'usage' (effects, errors, idempotency and
-- locks as there: the same key for the same user with another amount raises CR002).
create function credits.consume(
  p_user_id uuid,
  p_amount bigint,
  p_idempotency_key text,
  p_description text default null,
  p_now timestamptz default now()
) returns bigint
language sql
as $$
  select credits._spend(p_user_id => p_user_id, p_amount => p_amount, p_kind => 'usage',
                        p_idempotency_key => p_idempotency_key, p_description => p_description,
                        p_now => p_now)
$$;

-- credits.adjust_down(p_user_id, p_amount, p_key, p_reason, p_now)
-- Effects: credits._spend with ledger kind 'adjustment' and the reason as its description: the
--   user's due expiries at p_now are recorded, then p_amount credits leave the spendable grants
--   in the order consumption spends them.
-- Returns: the balance after. Idempotency key: (p_user_id, 'adjustment', p_key); a repeat returns
--   the first call's balance-after and changes nothing.
-- Errors: 22023 for a non-positive amount, an empty key or reason; 23503 for an unknown user;
--   CR001 when the balance is short (nothing is recorded: a balance never goes negative).
-- Locks: as credits._spend.
create function credits.adjust_down(p_user_id uuid, p_amount bigint, p_key text, p_reason text,
                                    p_now timestamptz default now()) returns bigint
language plpgsql
as $$
begin
  if coalesce(trim(p_reason), '') = '' then
    perform credits.raise_invalid('an adjustment needs a reason');
  end if;
  return credits._spend(p_user_id => p_user_id, p_amount => p_amount, p_kind => 'adjustment',
                        p_idempotency_key => p_key, p_description => trim(p_reason),
                        p_now => p_now);
end
$$;
