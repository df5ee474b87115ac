-- Expiry: a user's due grants recorded under their balance lock, and the batch for every user.
-- Locks as sql/credits.sql's header.

-- credits._expire_locked(p_user_id, p_now)
-- Inputs: a user whose credits.balances row the caller has already locked, or null for every user
--   with due grants or due reservations (expire_due, which has locked all of them); the clock.
-- Effects: first gives back the holds of the user's reservations whose expiresAt <= p_now
--   (credits._release_due_locked), then, for every grant of that user (or those users) that has
--   unspent credits and expires_at <= p_now, sets remaining to 0 and expired_at, lowers the
--   balance row, and appends one 'expiry' ledger entry per grant (balance_after running in expiry
--   order). Releases first: a hold that ended before its grant expired went back to the grant and
--   expires with it.
-- Returns: the number of grants expired. Idempotent: an expired grant has remaining = 0, a
--   released reservation is no longer open.
-- Locks: none of its own; relies on the caller's balance-row locks, so it reads settled rows.
-- Cost: two index entries read when nothing is due (the common case for one user); the statement
--   that expires is planned for the case at hand, one user or a whole batch.
create function credits._expire_locked(p_user_id uuid, p_now timestamptz) returns integer
language plpgsql
as $$
begin
  if p_user_id is null then
    return credits._expire_locked_many(null, p_now);
  end if;
  -- One user: is the soonest-expiring open grant due? Read in the grants_spendable index's own
  -- order, so the plan is that index's first entry for the user whatever the statistics say (a
  -- NOT EXISTS over expires_at <= p_now let a generic plan scan every grant, or every due grant
  -- of all users).
  if not coalesce((
       select g.expires_at <= p_now from credits.grants g
        where g.user_id = p_user_id and g.expired_at is null and g.remaining > 0
        order by g.expires_at nulls last, g.id
        limit 1), false)
     and not exists (select 1 from credits.reservations r
                      where r.user_id = p_user_id and r.status = 'open' and r.expires_at <= p_now)
  then
    return 0;
  end if;
  return credits._expire_locked_many(array[p_user_id], p_now);
end
$$;

-- credits._expire_locked_many(p_user_ids, p_now): credits._expire_locked for the users in
--   p_user_ids (all of them locked by the caller), or every user when null. Contract as there.
create function credits._expire_locked_many(p_user_ids uuid[], p_now timestamptz) returns integer
language plpgsql
as $$
declare
  v_count integer;
begin
  perform credits._release_due_locked(p_user_ids, p_now);
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
     where (p_user_ids is null or g.user_id = any (p_user_ids))
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

-- credits.expire_due(p_now)
-- Effects: for every user, records the releases of reservations and the expiry of grants due at
--   p_now (see _expire_locked); then marks grants that were spent down to 0 before their expiry
--   as expired too (expired_at, no ledger entry: nothing is removed), so that they leave the
--   open-grant indexes.
-- Returns: the number of grants whose unspent credits it removed. Idempotent.
-- Locks: the batch advisory lock, then the affected users' balance rows in user_id order (one
--   statement), then, in a statement that sees every change committed before the locks were
--   granted, their due grants. No grant can become due meanwhile: p_now is fixed and new grants
--   wait for the batch lock. Spent-out grants are marked without balance locks, so nobody waits
--   on them: the only writers of a grant whose remaining is 0 give credits back to it (a release,
--   a settlement, a usage refund), and those judge the grant live under its user's balance lock
--   and clear expired_at as they write, so a mark that slips in between is undone, never kept
--   on a grant that holds credits.
create function credits.expire_due(p_now timestamptz default now()) returns integer
language plpgsql
set work_mem = '256MB' -- its sorts of every due grant stay in memory
as $$
declare
  v_expired integer := 0;
begin
  perform credits.lock_batch();
  perform
     from credits.balances b
    where b.user_id in (
            select g.user_id from credits.grants g
             where g.expired_at is null and g.remaining > 0 and g.expires_at <= p_now
            union
            select r.user_id from credits.reservations r
             where r.status = 'open' and r.expires_at <= p_now)
    order by b.user_id
      for update of b;
  if found then
    v_expired := credits._expire_locked(null, p_now);
  end if;
  -- After the releases: a grant whose every credit is held reads as spent out, and a due
  -- reservation gives its hold back to it first (then it expires with an entry). Marked before,
  -- the hold was lost although the grant was live when the reservation ended.
  update credits.grants g
     set expired_at = p_now
   where g.expired_at is null and g.remaining = 0 and g.expires_at <= p_now;
  return v_expired;
end
$$;
