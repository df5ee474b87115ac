-- Reservations: credits held for a caller (an AI app's model call whose cost is known only at the
-- end), then settled at the actual cost, released, or released by reaching their expiresAt.
-- docs/credit-rules.md#reservations. Locks as sql/credits.sql's header: the user's balance row,
-- then the grants.
--
-- A hold takes its credits off their grants (a 'reservation' ledger entry, the balance drops), so
-- nothing else can spend them. Closing gives the hold back (a 'release' entry) to the grants that
-- are still live, and a settlement then spends the actual cost from those same grants as one
-- 'usage' entry. A reservation past its expiresAt counts as released at that instant, whatever
-- has run: credits.balance adds its live holds back, and the next change of the user's credits
-- (or the daily run) records the release, dated expiresAt, before anything else.

-- credits._live_holds(p_user_id, p_reservation_id, p_now) -> (grant_id, amount, position) of the
--   reservation's holds whose grant is still live at p_now (held credits expire with their
--   grant), in the order they were taken. Reads only; the caller holds the balance-row lock.
create function credits._live_holds(p_user_id uuid, p_reservation_id bigint, p_now timestamptz)
returns table (grant_id bigint, amount bigint, "position" bigint)
language plpgsql stable
as $$
#variable_conflict use_column
begin
  return query
  select h."grant", h.amount, h.ord
      from credits.reservations r
     cross join lateral rows from (jsonb_to_recordset(r.holds) as ("grant" bigint, amount bigint))
           with ordinality as h ("grant", amount, ord)
      join credits.grants g on g.user_id = r.user_id and g.id = h."grant"
     where r.user_id = p_user_id and r.id = p_reservation_id
       and g.expired_at is null and (g.expires_at is null or g.expires_at > p_now);
end
$$;

-- credits._held(p_user_id, p_now, p_ended) -> what open reservations hold at p_now on grants still
--   live at p_now: of those whose expiresAt has come (p_ended: spendable again, though the
--   release is not recorded yet; credits.balance adds it) or not (the reserved credits). Reads
--   only. Errors none (an unknown user holds 0).
create function credits._held(p_user_id uuid, p_now timestamptz, p_ended boolean) returns bigint
language plpgsql stable
as $$
begin
  return (
    select coalesce(sum(h.amount), 0)::bigint
      from credits.reservations r
     cross join lateral jsonb_to_recordset(r.holds) as h ("grant" bigint, amount bigint)
      join credits.grants g on g.user_id = r.user_id and g.id = h."grant"
     where r.user_id = p_user_id and r.status = 'open' and (r.expires_at <= p_now) = p_ended
       and g.expired_at is null and (g.expires_at is null or g.expires_at > p_now));
end
$$;

-- credits.reserved(p_user_id, p_now) -> the credits held at p_now: credits._held of the
--   reservations whose expiresAt is later than p_now. Reads only.
create function credits.reserved(p_user_id uuid, p_now timestamptz default now()) returns bigint
language sql stable
as $$ select credits._held(p_user_id, p_now, false) $$;

-- credits._release_due_locked(p_user_ids, p_now)
-- Inputs: users whose balance rows the caller has locked (null: every user, expire_due having
--   locked all with due reservations); the clock.
-- Effects: closes every open reservation of theirs whose expires_at <= p_now as 'expired': gives
--   each hold back to its grant when the grant was live at the reservation's expiresAt (held
--   credits on a grant that expired first are gone with it), raises the balance, and appends one
--   'release' entry per reservation that gave anything back, dated its expiresAt (the instant it
--   took effect), balance_after running in that order.
-- Returns the number of reservations closed. Idempotent: a closed reservation is not open.
-- Locks: none of its own (the caller's balance rows); updates the grants it gives back to.
create function credits._release_due_locked(p_user_ids uuid[], p_now timestamptz) returns integer
language plpgsql
as $$
declare
  v_count integer;
begin
  with due as (
    select r.user_id, r.id, r.expires_at, h."grant", h.amount,
           (g.expired_at is null and (g.expires_at is null or g.expires_at > r.expires_at)) as back
      from credits.reservations r
     cross join lateral jsonb_to_recordset(r.holds) as h ("grant" bigint, amount bigint)
      join credits.grants g on g.user_id = r.user_id and g.id = h."grant"
     where (p_user_ids is null or r.user_id = any (p_user_ids))
       and r.status = 'open' and r.expires_at <= p_now
  ), given as (
    update credits.grants g
       set remaining = g.remaining + p.amount, expired_at = null
      from (select user_id, "grant", sum(amount) as amount from due where back
             group by user_id, "grant") p
     where g.user_id = p.user_id and g.id = p."grant"
  ), per_reservation as (
    select d.user_id, d.id, d.expires_at, coalesce(sum(d.amount) filter (where d.back), 0) as returned
      from due d
     group by d.user_id, d.id, d.expires_at
  ), ordered as (
    select p.user_id, p.id, p.expires_at, p.returned,
           b.balance + sum(p.returned) over (partition by p.user_id order by p.expires_at, p.id)
             as balance_after,
           b.balance + sum(p.returned) over (partition by p.user_id) as final_balance
      from per_reservation p
      join credits.balances b on b.user_id = p.user_id
  ), closed as (
    update credits.reservations r
       set status = 'expired', closed_at = o.expires_at, returned = o.returned
      from ordered o
     where r.user_id = o.user_id and r.id = o.id
  ), balance as (
    update credits.balances b
       set balance = o.final_balance, updated_at = now()
      from (select distinct user_id, final_balance from ordered where returned > 0) o
     where b.user_id = o.user_id
  ), entries as (
    insert into credits.ledger (user_id, kind, amount, balance_after, created_at, origin_id)
    select o.user_id, 'release', o.returned, o.balance_after, o.expires_at, o.id
      from ordered o
     where o.returned > 0
     order by o.user_id, o.expires_at, o.id
  )
  select count(*) into v_count from ordered;
  return v_count;
end
$$;

-- credits.reserve(p_user_id, p_amount, p_idempotency_key, p_ttl_seconds, p_description, p_now)
-- Effects: holds p_amount credits taken in spending order (credits._spend with ledger kind
--   'reservation': due expiries and releases recorded first, the balance lowered) until
--   p_now + p_ttl_seconds (default 600, 1 to 86,400), and records the reservation.
-- Returns: the reservation's id (its ledger entry's id) and whether this call made it.
-- Idempotency key: (p_user_id, p_idempotency_key) among reservations; a repeat with the same
--   amount returns the first reservation, whatever became of it; another amount raises CR002.
-- Errors: 22023 (amount, key, ttl), 23503 unknown user, CR001 short, CR002.
-- Locks: as credits._spend (the balance row, then the grants).
create function credits.reserve(p_user_id uuid, p_amount bigint, p_idempotency_key text,
                                p_ttl_seconds integer default 600, p_description text default null,
                                p_now timestamptz default now(),
                                out reservation_id bigint, out created boolean)
language plpgsql
as $$
declare
  v_ttl integer := coalesce(p_ttl_seconds, 600);
  v_amount bigint;
  v_draws jsonb;
begin
  if v_ttl < 1 or v_ttl > 86400 then
    perform credits.raise_invalid('ttlSeconds must be 1 to 86400');
  end if;
  created := false;
  select r.id, r.amount into reservation_id, v_amount
    from credits.reservations r
   where r.user_id = p_user_id and r.idempotency_key = p_idempotency_key;
  if found then
    if v_amount <> p_amount then
      perform credits.raise_key_reused(p_idempotency_key, v_amount, p_amount);
    end if;
    return;
  end if;
  -- Refuses, or takes the credits; under the balance-row lock from here on. A concurrent first
  -- use of the key has committed by now, and _spend has checked its amount.
  perform credits._spend(p_user_id, p_amount, 'reservation', p_idempotency_key, p_description,
                         p_now);
  select l.id, l.draws into reservation_id, v_draws
    from credits.ledger l
   where l.user_id = p_user_id and l.kind = 'reservation'
     and l.idempotency_key = p_idempotency_key;
  insert into credits.reservations
    (user_id, id, amount, holds, idempotency_key, description, created_at, expires_at)
  values (p_user_id, reservation_id, p_amount, v_draws, p_idempotency_key, p_description, p_now,
          p_now + make_interval(secs => v_ttl))
  on conflict (user_id, idempotency_key) do nothing;
  created := found;
end
$$;

-- credits._close_reservation(p_reservation_id, p_settle_amount, p_description, p_now)
-- The one place a reservation is closed by its caller: p_settle_amount null releases it, a number
-- settles it (0 spends nothing).
-- Effects: records the user's due expiries and releases (the reservation itself may close as
--   expired then); gives the holds that are live at p_now back to their grants (a 'release' entry
--   when anything comes back) and, for a settlement, spends p_settle_amount from those same holds
--   in the order they were taken (a 'usage' entry with key credits.settlement_key(id), origin the
--   reservation). Marks it 'released' or 'settled'.
-- Returns: the balance after, the usage entry's id (null when nothing was spent or released),
--   and the amount settled.
-- Idempotency: a settled reservation settled again with the same amount answers the first
--   answer; a released or expired one released again answers the balance; anything else CR004.
-- Errors: CR007 unknown reservation; 22023 negative amount; CR003 more than held, or more than is
--   still live of the hold; CR004 closed.
-- Locks: the reservation's user's balance row, then the grants.
create function credits._close_reservation(p_reservation_id bigint, p_settle_amount bigint,
                                           p_description text, p_now timestamptz,
                                           out balance bigint, out usage_id bigint,
                                           out settled bigint)
language plpgsql
-- Its statements are all by user and id: one plan each for the session (planning them per call
-- cost more than running them).
set plan_cache_mode = force_generic_plan
as $$
declare
  v_user uuid;
  r credits.reservations;
  v_live bigint;
begin
  if p_settle_amount < 0 then
    perform credits.raise_invalid('a settlement amount is 0 or more');
  end if;
  select x.user_id into v_user from credits.reservations x where x.id = p_reservation_id;
  if not found then
    raise exception using errcode = 'CR007',
      message = format('no reservation %s', p_reservation_id);
  end if;
  select b.balance into balance from credits.balances b where b.user_id = v_user for update;
  perform credits._expire_locked(v_user, p_now);
  select * into r from credits.reservations x where x.user_id = v_user and x.id = p_reservation_id;
  select b.balance into balance from credits.balances b where b.user_id = v_user;

  if r.status <> 'open' then
    if p_settle_amount is null and r.status in ('released', 'expired') then
      return;
    end if;
    if r.status = 'settled' and r.settled_amount = p_settle_amount then
      usage_id := r.usage_id;
      settled := r.settled_amount;
      select l.balance_after into balance from credits.ledger l
       where l.user_id = v_user and l.origin_id = r.id order by l.id desc limit 1;
      return;
    end if;
    raise exception using errcode = 'CR004',
      message = format('reservation %s is already %s', r.id, r.status);
  end if;
  if p_settle_amount > r.amount then
    raise exception using errcode = 'CR003',
      message = format('settlement of %s exceeds the %s credits held', p_settle_amount, r.amount);
  end if;
  select coalesce(sum(h.amount), 0) into v_live from credits._live_holds(v_user, r.id, p_now) h;
  if p_settle_amount > v_live then
    raise exception using errcode = 'CR003',
      message = format('settlement of %s exceeds the %s held credits whose grants have not expired',
                       p_settle_amount, v_live);
  end if;

  with holds as (
    select h.grant_id, h.amount,
           least(h.amount, greatest(0, coalesce(p_settle_amount, 0)
                                       - (sum(h.amount) over (order by h.position) - h.amount)))
             as take,
           sum(h.amount) over (order by h.position) as running
      from credits._live_holds(v_user, r.id, p_now) h
  ), given as (
    update credits.grants g
       set remaining = g.remaining + h.amount - h.take, expired_at = null
      from holds h
     where g.user_id = v_user and g.id = h.grant_id and h.amount > h.take
  ), entries as (
    insert into credits.ledger (user_id, kind, amount, balance_after, description, created_at,
                                idempotency_key, draws, origin_id)
    select v_user, e.kind, e.amount, e.balance_after, e.description, p_now, e.key, e.draws, r.id
      from (values
              (1, 'release', v_live, balance + v_live, null::text, null::text, null::jsonb),
              (2, 'usage', -coalesce(p_settle_amount, 0), balance + v_live - coalesce(p_settle_amount, 0),
               coalesce(p_description, r.description), credits.settlement_key(r.id),
               (select jsonb_agg(jsonb_build_object('grant', h.grant_id, 'amount', h.take)
                                 order by h.running)
                  from holds h where h.take > 0))
           ) as e (n, kind, amount, balance_after, description, key, draws)
     where e.amount <> 0
     order by e.n
    returning id, kind
  )
  select max(e.id) filter (where e.kind = 'usage') into usage_id from entries e;

  update credits.balances b
     set balance = b.balance + v_live - coalesce(p_settle_amount, 0), updated_at = now()
   where b.user_id = v_user
  returning b.balance into balance;
  update credits.reservations x
     set status = case when p_settle_amount is null then 'released' else 'settled' end,
         closed_at = p_now, returned = v_live, settled_amount = p_settle_amount,
         usage_id = _close_reservation.usage_id
   where x.user_id = v_user and x.id = r.id;
  settled := p_settle_amount;
end
$$;

-- credits.settle(p_reservation_id, p_amount, p_description, p_now): credits._close_reservation
--   with a settlement of p_amount (0 to the held amount). Contract as there.
create function credits.settle(p_reservation_id bigint, p_amount bigint,
                               p_description text default null, p_now timestamptz default now(),
                               out balance bigint, out usage_id bigint, out settled bigint)
language plpgsql
as $$
begin
  if p_amount is null then
    perform credits.raise_invalid('a settlement needs an amount');
  end if;
  select c.balance, c.usage_id, c.settled into balance, usage_id, settled
    from credits._close_reservation(p_reservation_id, p_amount, p_description, p_now) c;
end
$$;

-- credits.release(p_reservation_id, p_now) -> the balance after: credits._close_reservation
--   without a settlement. Repeatable; CR004 after a settlement.
create function credits.release(p_reservation_id bigint, p_now timestamptz default now())
returns bigint
language plpgsql
as $$
begin
  return (
  select c.balance from credits._close_reservation(p_reservation_id, null, null, p_now) c);
end
$$;
