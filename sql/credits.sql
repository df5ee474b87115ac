-- Credits: grants, consumption, balance, expiry.
--
-- Locking discipline (every function here and in the other files keeps it):
--   1. a user's credits.balances row is locked before any of that user's grants change;
--   2. batches that touch many users (expiry, distribution) hold the transaction advisory lock
--      credits.batch_lock() first, so two batches never wait on each other's rows;
--   3. batches lock balance rows in user_id order, or update them in one statement after the
--      grants they add are inserted;
--   4. every grant takes the batch advisory lock in SHARED mode before the balance row: a grant
--      may insert a source key that a running batch has inserted but not committed (a yearly
--      slot 0 from a webhook, say), and would otherwise wait on the batch while holding the
--      balance row the batch needs next. With it, a grant waits for a batch before locking.
-- A single-user function therefore never waits on a lock that waits on it.

-- The kinds a grant may have (contract section 6).
create function credits.grant_kinds() returns text[]
language sql immutable parallel safe
as $$
  select array['signup_gift', 'free_monthly', 'subscription_period', 'subscription_monthly',
               'lifetime_monthly', 'trial', 'upgrade', 'package', 'daily_signin', 'adjustment',
               'bonus']
$$;

-- Human text for a ledger entry that was written without a description (batches write none, to
-- keep a million-row distribution small).
create function credits.kind_label(p_kind text) returns text
language sql immutable parallel safe
as $$
  select case p_kind
    when 'signup_gift' then 'Sign-up gift'
    when 'free_monthly' then 'Free plan monthly credits'
    when 'subscription_period' then 'Subscription credits'
    when 'subscription_monthly' then 'Yearly plan monthly credits'
    when 'lifetime_monthly' then 'Lifetime plan monthly credits'
    when 'trial' then 'Trial credits'
    when 'upgrade' then 'Plan upgrade credits'
    when 'package' then 'Credit package'
    when 'daily_signin' then 'Daily sign-in'
    when 'adjustment' then 'Adjustment'
    when 'bonus' then 'Bonus'
    when 'usage' then 'Usage'
    when 'expiry' then 'Credits expired'
    when 'refund' then 'Refund'
    when 'dispute' then 'Dispute'
    else p_kind
  end
$$;

-- Months in UTC, whatever the session's TimeZone: timestamptz + interval would use the session's.
create function credits.add_months_utc(p_at timestamptz, p_months integer) returns timestamptz
language sql immutable parallel safe
as $$
  select ((p_at at time zone 'UTC') + make_interval(months => p_months)) at time zone 'UTC'
$$;

-- Days in UTC: 24 hours each. timestamptz + interval would count days in the session's time zone,
-- where a day across a daylight-saving change lasts 23 or 25 hours. Null days: null (never).
create function credits.add_days_utc(p_at timestamptz, p_days integer) returns timestamptz
language sql immutable parallel safe
as $$
  select ((p_at at time zone 'UTC') + make_interval(days => p_days)) at time zone 'UTC'
$$;

-- Whole months from p_from to p_to: the largest k with add_months_utc(p_from, k) <= p_to, so the
-- number of the latest month slot started by p_to; 0 when p_to is earlier. Not age(): age() says
-- Jan 31 -> Feb 28 is 28 days, while slot 1 of a Jan 31 start begins on Feb 28.
create function credits.months_between_utc(p_from timestamptz, p_to timestamptz) returns integer
language sql immutable parallel safe
as $$
  select greatest(0, m - case when credits.add_months_utc(p_from, m) > p_to then 1 else 0 end)
    from (select ((extract(year from t) - extract(year from f)) * 12
                  + extract(month from t) - extract(month from f))::integer as m
            from (select p_from at time zone 'UTC' as f, p_to at time zone 'UTC' as t) utc) s
$$;

create function credits.raise_unknown_user(p_user_id uuid) returns void
language plpgsql
as $$
begin
  raise exception using errcode = '23503', message = format('unknown user %s', p_user_id);
end
$$;

create function credits.raise_invalid(p_message text) returns void
language plpgsql
as $$
begin
  raise exception using errcode = '22023', message = p_message;
end
$$;

-- An idempotency key that was first used for p_first credits, sent again for p_amount: CR002
-- (HTTP 409 idempotency_key_reused). DETAIL carries the first amount, for a form to say it.
create function credits.raise_key_reused(p_key text, p_first bigint, p_amount bigint) returns void
language plpgsql
as $$
begin
  raise exception using errcode = 'CR002', detail = p_first::text,
    message = format('idempotency key "%s" was already used with %s credits, not %s', p_key,
                     p_first, p_amount);
end
$$;

-- credits._expire_locked(p_user_id, p_now)
-- Inputs: a user whose credits.balances row the caller has already locked, or null for every user
--   with due grants (expire_due, which has locked all of them); the clock.
-- Effects: for every grant of that user (or those users) that has unspent credits and
--   expires_at <= p_now, sets remaining to 0 and expired_at, lowers the balance row, and appends
--   one 'expiry' ledger entry per grant (balance_after running in expiry order).
-- Returns: the number of grants expired. Idempotent: an expired grant has remaining = 0.
-- Locks: none of its own; relies on the caller's balance-row locks, so it reads settled rows.
-- Cost: one index entry read when nothing is due (the common case for one user); the statement
--   that expires is planned for the case at hand, one user or a whole batch.
create function credits._expire_locked(p_user_id uuid, p_now timestamptz) returns integer
language plpgsql
as $$
declare
  v_count integer;
begin
  -- One user: is the soonest-expiring open grant due? Read in the grants_spendable index's own
  -- order, so the plan is that index's first entry for the user whatever the statistics say (a
  -- NOT EXISTS over expires_at <= p_now let a generic plan scan every grant, or every due grant
  -- of all users).
  if p_user_id is not null and not coalesce((
       select g.expires_at <= p_now from credits.grants g
        where g.user_id = p_user_id and g.expired_at is null and g.remaining > 0
        order by g.expires_at nulls last, g.id
        limit 1), false) then
    return 0;
  end if;
  -- The balance rows are locked by the caller, so this statement's snapshot reads their current
  -- values and the grants as they are. The due grants are a plain query (real row estimates, a
  -- hash join over a whole batch); no CTE is joined to another CTE, whose estimates are guesses.
  with due as (
    select g.user_id, g.id, g.remaining as amount,
           b.balance - sum(g.remaining) over (partition by g.user_id order by g.expires_at, g.id)
             as balance_after,
           b.balance - sum(g.remaining) over (partition by g.user_id) as final_balance
      from credits.grants g
      join credits.balances b on b.user_id = g.user_id
     where (p_user_id is null or g.user_id = p_user_id)
       and g.expired_at is null and g.remaining > 0 and g.expires_at <= p_now
  ), expired as (
    update credits.grants g
       set remaining = 0, expired_at = p_now
      from due d
     where g.user_id = d.user_id and g.id = d.id
    returning d.user_id, d.id, d.amount, d.balance_after
  ), balance as (
    update credits.balances b
       set balance = d.final_balance, updated_at = now()
      from due d
     where b.user_id = d.user_id and d.balance_after = d.final_balance -- each user's last entry
  ), entries as (
    insert into credits.ledger (user_id, kind, amount, balance_after, created_at, grant_id)
    select e.user_id, 'expiry', -e.amount, e.balance_after, p_now, e.id
      from expired e
     order by e.user_id, e.balance_after desc
    returning 1
  )
  select count(*) into v_count from entries;
  return v_count;
end
$$;

-- credits.balance(p_user_id, p_now)
-- Returns the credits spendable at p_now: what remains on grants not expired at p_now, whether or
-- not the expiry has reached the ledger yet. Reads only; takes no lock.
-- Errors: 23503 for an unknown user.
create function credits.balance(p_user_id uuid, p_now timestamptz default now()) returns bigint
language plpgsql stable
as $$
declare
  v_balance bigint;
begin
  select coalesce(sum(g.remaining), 0) into v_balance
    from credits.grants g
   where g.user_id = p_user_id and g.expired_at is null and g.remaining > 0
     and (g.expires_at is null or g.expires_at > p_now);
  if v_balance = 0 and not exists (select 1 from credits.balances where user_id = p_user_id) then
    perform credits.raise_unknown_user(p_user_id);
  end if;
  return v_balance;
end
$$;

-- credits.grant_once(p_user_id, p_amount, p_kind, p_source_key, p_expires_at, p_description)
-- Effects: adds a grant of p_amount credits of p_kind, expiring at p_expires_at (null: never),
--   raises the balance and appends a ledger entry of kind p_kind. Before that, records the
--   expiry of the user's grants that are already due (now()).
-- Returns: the grant's id, and whether this call made it (false for a repeated key).
-- Idempotency key: p_source_key, unique across all users; a repeat changes nothing.
-- Errors: 22023 for a non-positive amount, an unknown kind or an empty key; 23503 for an unknown
--   user; 23505 when the key belongs to another user's grant.
-- Locks: the batch advisory lock (shared), then the user's balance row.
create function credits.grant_once(
  p_user_id uuid,
  p_amount bigint,
  p_kind text,
  p_source_key text,
  p_expires_at timestamptz default null,
  p_description text default null,
  out grant_id bigint,
  out created boolean
)
language plpgsql
as $$
declare
  v_owner uuid;
  v_balance bigint;
begin
  if p_amount is null or p_amount <= 0 then
    perform credits.raise_invalid('amount must be a positive number of credits');
  end if;
  if p_kind is null or not (p_kind = any (credits.grant_kinds())) then
    perform credits.raise_invalid(format('unknown grant kind %L', p_kind));
  end if;
  if p_source_key is null or p_source_key = '' then
    perform credits.raise_invalid('a grant needs a source key');
  end if;
  created := false;

  select g.user_id, g.id into v_owner, grant_id from credits.grants g where g.source_key = p_source_key;
  if not found then
    perform credits.lock_batch_shared();
    perform 1 from credits.balances where user_id = p_user_id for update;
    if not found then
      perform credits.raise_unknown_user(p_user_id);
    end if;
    perform credits._expire_locked(p_user_id, now());

    insert into credits.grants (user_id, kind, amount, remaining, expires_at, source_key, description)
    values (p_user_id, p_kind, p_amount, p_amount, p_expires_at, p_source_key, p_description)
    on conflict (source_key) do nothing
    returning id into grant_id;

    if grant_id is not null then
      update credits.balances set balance = balance + p_amount, updated_at = now()
       where user_id = p_user_id
      returning balance into v_balance;
      insert into credits.ledger (user_id, kind, amount, balance_after, description, grant_id)
      values (p_user_id, p_kind, p_amount, v_balance, p_description, grant_id);
      created := true;
      return;
    end if;
    -- Another transaction committed the same key while we waited: read what it made.
    select g.user_id, g.id into v_owner, grant_id from credits.grants g where g.source_key = p_source_key;
  end if;

  if v_owner <> p_user_id then
    raise exception using errcode = '23505',
      message = format('source key %L is already used by another user', p_source_key);
  end if;
end
$$;

-- credits.grant(...): the contract's form of grant_once; returns only the grant's id.
create function credits.grant(
  p_user_id uuid,
  p_amount bigint,
  p_kind text,
  p_source_key text,
  p_expires_at timestamptz default null,
  p_description text default null
) returns bigint
language sql
as $$
  select g.grant_id
    from credits.grant_once(p_user_id, p_amount, p_kind, p_source_key, p_expires_at,
                            p_description) g
$$;

-- credits._spend(p_user_id, p_amount, p_kind, p_idempotency_key, p_description, p_now)
-- The one place that takes credits away in spend order: consume ('usage') and an admin's negative
-- adjustment (credits.adjust_down, 'adjustment') are this function.
-- Effects: records the due expiries of the user at p_now, then takes p_amount credits from the
--   spendable grants, soonest expiry first (never-expiring last), oldest first on ties; lowers
--   the balance; appends one ledger entry of kind p_kind that lists the grants drawn from.
-- Returns: the balance after. Idempotency key: (p_user_id, p_kind, p_idempotency_key); a repeat
--   with the same amount returns the first call's balance-after and changes nothing; with
--   another amount it raises CR002 and changes nothing.
-- Errors: 22023 for a non-positive amount or an empty key; 23503 for an unknown user; CR001 when
--   the balance is short, and then nothing is recorded (the key stays unused); CR002 for a key
--   already used with another amount.
-- Locks: the user's balance row, then (by updating) the grants it draws from.
-- Cost: the hot path of the API. Four statements when the first grant in spend order covers the
--   amount (lock and read the balance; look up the key; read that grant; update it, the balance
--   and the ledger in one statement), one more when several grants are drawn from. The first
--   open grant in spend order is also the soonest to expire, so reading it tells whether an
--   expiry is due; the expiry statement runs only then.
create function credits._spend(
  p_user_id uuid,
  p_amount bigint,
  p_kind text,
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
-- Contract section 6: credits._spend with ledger kind 'usage' (effects, errors, idempotency and
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
  select credits._spend(p_user_id, p_amount, 'usage', p_idempotency_key, p_description, p_now)
$$;

-- credits.expire_due(p_now)
-- Effects: for every user, records the expiry of grants due at p_now (see _expire_locked); marks
--   grants that were spent down to 0 before their expiry as expired too (expired_at, no ledger
--   entry: nothing is removed), so that they leave the open-grant indexes.
-- Returns: the number of grants whose unspent credits it removed. Idempotent.
-- Locks: the batch advisory lock, then the affected users' balance rows in user_id order (one
--   statement), then, in a statement that sees every change committed before the locks were
--   granted, their due grants. No grant can become due meanwhile: p_now is fixed and new grants
--   wait for the batch lock. Spent-out grants are marked without balance locks: nothing else
--   updates a grant whose remaining is 0, so nobody waits on them.
create function credits.expire_due(p_now timestamptz default now()) returns integer
language plpgsql
set work_mem = '256MB' -- its sorts of every due grant stay in memory
as $$
begin
  perform credits.lock_batch();
  update credits.grants g
     set expired_at = p_now
   where g.expired_at is null and g.remaining = 0 and g.expires_at <= p_now;
  perform
     from credits.balances b
    where b.user_id in (
            select g.user_id from credits.grants g
             where g.expired_at is null and g.remaining > 0 and g.expires_at <= p_now)
    order by b.user_id
      for update of b;
  if not found then
    return 0;
  end if;
  return credits._expire_locked(null, p_now);
end
$$;
