-- Credits: the kinds, the time and error helpers, the balance, and grants (one, and the daily
-- sign-in). Consumption is in credits_spend.sql, expiry in credits_expiry.sql.
--
-- Locking discipline (every function here and in the other files keeps it):
--   1. a user's credits.balances row is locked before any of that user's grants change;
--   2. whole-table batches (credits.expire_due, credits.distribute_monthly) hold the transaction
--      advisory lock credits.lock_batch() exclusively first, so two of them never wait on each
--      other's rows, and no grant or daily batch runs meanwhile;
--   3. multi-user functions lock balance rows in user_id order (the daily run's batches,
--      credits._daily_batch, and usage batches), or, as the whole-table batches, update them in
--      one statement after the grants they add are inserted;
--   4. every grant, and every batch of the daily run, takes the batch advisory lock in SHARED
--      mode before any balance row. Against a whole-table batch: a grant may insert a source key
--      that the batch has inserted but not committed (a yearly slot 0 from a webhook, say), and
--      would otherwise wait on the batch while holding the balance row the batch needs next;
--      with it, a grant waits for the batch before locking. Against a daily batch there is
--      nothing to wait for: the batch locks its users' rows (rule 3) before it reads or inserts
--      their keys, so a grant of one of its users waits at that user's row, holding nothing the
--      batch needs, for that one batch only, and a grant of any other user does not wait at all.
--   5. a daily run holds the daily-run session lock (credits.try_lock_daily_run) across its
--      batches; it is only ever tried, never waited for, so it orders nothing.
-- A single-user function therefore never waits on a lock that waits on it.

-- credits.grant_kinds() -> the kinds a grant may have (docs/sql.md#kinds): the values of the
--   domain credits.grant_kind (migration 0006), in its order; utils/kinds.ts holds the same list
--   and tests/utils/kinds_test.ts checks all three. Inputs none. Effects none. Errors none. Locks
--   none. An array literal rather than a catalogue read: credits.grant_once checks every kind
--   against it.
create function credits.grant_kinds() returns text[]
language sql immutable parallel safe
as $$
  select array['signup_gift', 'free_monthly', 'subscription_period', 'subscription_monthly',
               'lifetime_monthly', 'trial', 'upgrade', 'package', 'daily_signin', 'adjustment',
               'bonus']
$$;

-- credits.kind_label(p_kind) -> the human text of a ledger entry that was written without a
--   description (batches write none, to keep a million-row distribution small); an unknown kind
--   reads as itself. The pages use the same words (utils/kinds.ts, checked by
--   tests/utils/kinds_test.ts). Effects none. Errors none. Locks none.
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
    when 'reservation' then 'Credits reserved'
    when 'release' then 'Reserved credits released'
    when 'usage_refund' then 'Usage refunded'
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

-- credits.balance(p_user_id, p_now)
-- Inputs: a user; the clock.
-- Returns the credits spendable at p_now: what remains on grants not expired at p_now, whether or
--   not the expiry has reached the ledger yet, plus what reservations past their expiresAt still
--   hold on such grants (released at that instant, recorded later).
-- Effects none (reads only); no idempotency key needed. Locks none.
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
  -- Held credits of reservations past their expiresAt are spendable again at once.
  v_balance := v_balance + credits._held(p_user_id, p_now, true);
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

-- credits.grant(p_user_id, p_amount, p_kind, p_source_key, p_expires_at, p_description)
-- The documented form of credits.grant_once (docs/sql.md#functions).
-- Inputs, effects, errors, idempotency key and locks: as credits.grant_once.
-- Returns: only the grant's id (the existing one for a repeated key).
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
    from credits.grant_once(p_user_id => p_user_id, p_amount => p_amount, p_kind => p_kind,
                            p_source_key => p_source_key, p_expires_at => p_expires_at,
                            p_description => p_description) g
$$;

-- credits.daily_signin(p_user_id, p_now)
-- Inputs: a user; the clock (its UTC day is the day claimed).
-- Effects: grants dailySignin.credits once per user per UTC day, expiring after
--   dailySignin.expiresInDays (credits.grant_once).
-- Returns: granted (0 when already taken today or when the plans file has no daily sign-in) and
--   the balance at p_now.
-- Idempotency key: credits.daily_signin_key(user, p_now) (daily_signin:<user>:<YYYY-MM-DD>).
-- Errors: 23503 for an unknown user.
-- Locks: as credits.grant_once: the batch lock (shared), then the user's balance row.
create function credits.daily_signin(p_user_id uuid, p_now timestamptz default now())
returns table (granted bigint, balance bigint)
language plpgsql
as $$
declare
  v_credits bigint;
  v_days integer;
  v_key text := credits.daily_signin_key(p_user_id, p_now);
begin
  select s.daily_signin_credits, s.daily_signin_days into v_credits, v_days from billing.settings s;
  granted := 0;
  if coalesce(v_credits, 0) > 0 then
    select case when g.created then v_credits else 0 end into granted
      from credits.grant_once(p_user_id => p_user_id, p_amount => v_credits,
                              p_kind => 'daily_signin', p_source_key => v_key,
                              p_expires_at => credits.add_days_utc(p_now, v_days)) g;
  end if;
  balance := credits.balance(p_user_id, p_now);
  return next;
end
$$;
