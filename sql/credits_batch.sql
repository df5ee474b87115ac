-- Many consumptions in one statement: POST /api/v1/usage/batch, and the server's coalescing of
-- single consumptions that arrive together (one SQL call and one commit for the group). Each
-- event is its own all-or-nothing consumption with the rules of credits._spend; set-based, no
-- loop over events. Locks as sql/credits.sql's header.

-- credits.consume_batch(p_events, p_now)
-- Inputs: a JSON array of {"user": uuid, "amount": n, "key": text, "description"?: text}, in the
--   order the caller sent them; the clock.
-- Effects: locks the balance rows of the named users in user_id order; records their due
--   expiries and releases; then, for each user, takes its events in order and applies each one
--   that the balance still covers at that point (a refused event takes nothing, and a later,
--   smaller one may still fit), drawing credits in spending order (soonest expiry first,
--   never-expiring last, oldest first: credits._spend's order, applied to the running total of the
--   user's applied events over the running total of their grants' remaining); one 'usage' entry
--   per applied event, balance_after running in event order.
-- Returns one row per event: its position (1-based), status ok | insufficient_credits |
--   unknown_user | invalid (amount not positive, key empty) | idempotency_key_reused, and for ok
--   the balance after it and its usage id.
-- Idempotency key: (user, 'usage', key) as credits.consume: an event whose key was used before
--   (by any consumption) answers the first result when the amount is the same; the second and
--   later events with one key in the same call answer what the first of them got.
-- Locks: the users' balance rows, in user_id order (as every multi-user function), then grants.
create function credits.consume_batch(p_events jsonb, p_now timestamptz default now())
returns table (n integer, status text, balance bigint, usage_id bigint)
language plpgsql
as $$
#variable_conflict use_column
declare
  v_users uuid[];
  v_due uuid[];
begin
  select coalesce(array_agg(x.user_id), '{}') into v_users
    from (select b.user_id from credits.balances b
           where b.user_id in (select (e ->> 'user')::uuid from jsonb_array_elements(p_events) e)
           order by b.user_id
             for update of b) x;

  -- Due expiries and releases first, for the users that have any (two index probes each).
  select array_agg(u.id) into v_due
    from unnest(v_users) as u (id)
   where coalesce((select g.expires_at <= p_now from credits.grants g
                    where g.user_id = u.id and g.expired_at is null and g.remaining > 0
                    order by g.expires_at nulls last, g.id limit 1), false)
      or exists (select 1 from credits.reservations r
                  where r.user_id = u.id and r.status = 'open' and r.expires_at <= p_now);
  if v_due is not null then
    perform credits._expire_locked_many(v_due, p_now);
  end if;

  return query
  with recursive ev as (
    select t.n::integer as n, (t.e ->> 'user')::uuid as user_id, t.e ->> 'key' as key,
           t.e ->> 'description' as description,
           case when jsonb_typeof(t.e -> 'amount') = 'number'
                 and (t.e ->> 'amount') ~ '^[1-9][0-9]{0,17}$'
                then (t.e ->> 'amount')::bigint end as amount
      from jsonb_array_elements(p_events) with ordinality as t (e, n)
  ), ranked as (
    select ev.*,
           row_number() over (partition by ev.user_id, ev.key,
                                           ev.user_id = any (v_users) and ev.amount is not null
                              order by ev.n) as dup,
           ev.user_id = any (v_users) as known,
           ev.amount is not null and coalesce(ev.key, '') <> '' as valid
      from ev
  ), prior as (
    select r.n, l.id, -l.amount as amount, l.balance_after
      from ranked r
      join credits.ledger l
        on l.user_id = r.user_id and l.kind = 'usage' and l.idempotency_key = r.key
     where r.dup = 1 and r.known and r.valid
  ), sums as (
    select r.user_id, r.n, r.amount, r.key, r.description, b.balance as start,
           sum(r.amount) over (partition by r.user_id order by r.n) as cum,
           row_number() over (partition by r.user_id order by r.n) as k
      from ranked r
      join credits.balances b on b.user_id = r.user_id
     where r.dup = 1 and r.known and r.valid and not exists (select 1 from prior p where p.n = r.n)
  ), tight as (
    -- Users whose events do not all fit: only these need the event-by-event walk.
    select s.* from sums s
     where s.user_id in (select x.user_id from sums x where x.cum > x.start)
  ), walk (user_id, k, n, ok, room) as (
    select s.user_id, s.k, s.n, s.amount <= s.start,
           s.start - case when s.amount <= s.start then s.amount else 0 end
      from tight s where s.k = 1
    union all
    select s.user_id, s.k, s.n, s.amount <= w.room,
           w.room - case when s.amount <= w.room then s.amount else 0 end
      from walk w join tight s on s.user_id = w.user_id and s.k = w.k + 1
  ), applied as (
    select s.user_id, s.n, s.amount, s.key, s.description, s.start,
           sum(s.amount) over (partition by s.user_id order by s.n) as upto
      from sums s
     where not exists (select 1 from tight x where x.n = s.n)
        or exists (select 1 from walk w where w.n = s.n and w.ok)
  ), spendable as (
    select g.user_id, g.id, g.remaining,
           sum(g.remaining) over (partition by g.user_id order by g.expires_at nulls last, g.id)
             as upto
      from credits.grants g
     where g.user_id = any (v_users) and g.expired_at is null and g.remaining > 0
       and (g.expires_at is null or g.expires_at > p_now)
  ), draws as (
    -- The event's credits are the interval (upto - amount, upto] of its user's applied running
    -- total; a grant's are (upto - remaining, upto] of the running total of spendable grants.
    select a.user_id, a.n, s.id as grant_id, s.upto as grant_upto,
           least(a.upto, s.upto) - greatest(a.upto - a.amount, s.upto - s.remaining) as take
      from applied a
      join spendable s
        on s.user_id = a.user_id and s.upto - s.remaining < a.upto and s.upto > a.upto - a.amount
  ), taken as (
    update credits.grants g
       set remaining = g.remaining - d.total
      from (select d.user_id, d.grant_id, sum(d.take) as total from draws d
             group by d.user_id, d.grant_id) d
     where g.user_id = d.user_id and g.id = d.grant_id
  ), lowered as (
    update credits.balances b
       set balance = b.balance - t.total, updated_at = now()
      from (select a.user_id, sum(a.amount) as total from applied a group by a.user_id) t
     where b.user_id = t.user_id
  ), entries as (
    insert into credits.ledger
      (user_id, kind, amount, balance_after, description, created_at, idempotency_key, draws)
    select a.user_id, 'usage', -a.amount, a.start - a.upto, a.description, p_now, a.key, d.draws
      from applied a
      join (select d.user_id, d.n,
                   jsonb_agg(jsonb_build_object('grant', d.grant_id, 'amount', d.take)
                             order by d.grant_upto) as draws
              from draws d group by d.user_id, d.n) d
        on d.user_id = a.user_id and d.n = a.n
     order by a.user_id, a.n
    returning credits.ledger.id, credits.ledger.user_id, credits.ledger.idempotency_key,
              credits.ledger.balance_after
  )
  select r.n,
         case
           when not r.valid then 'invalid'
           when not r.known then 'unknown_user'
           when r.amount <> first.amount then 'idempotency_key_reused'
           when p.id is not null and p.amount <> first.amount then 'idempotency_key_reused'
           when p.id is not null or e.id is not null then 'ok'
           else 'insufficient_credits'
         end,
         case when r.amount = first.amount and (p.id is null or p.amount = first.amount)
              then coalesce(p.balance_after, e.balance_after) end,
         case when r.amount = first.amount and (p.id is null or p.amount = first.amount)
              then coalesce(p.id, e.id) end
    from ranked r
    left join ranked first
      on first.user_id = r.user_id and first.key = r.key and first.dup = 1 and first.known
     and first.valid
    left join prior p on p.n = first.n
    left join entries e on e.user_id = first.user_id and e.idempotency_key = first.key
   order by r.n;
end
$$;
