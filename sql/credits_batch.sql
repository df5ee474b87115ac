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
-- One plan for every call: planning these statements anew per call cost more than running
-- them (custom plans gain nothing here: the events are one parameter whatever they hold).
set plan_cache_mode = force_generic_plan
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
  ), checked as (
    select ev.*, b.balance as start, b.user_id is not null as known,
           ev.amount is not null and coalesce(ev.key, '') <> '' as valid
      from ev
      left join lateral (select x.user_id, x.balance from credits.balances x
                          where x.user_id = ev.user_id limit 1) b on true
  ), prior as (
    select c.*, l.id as prior_id, -l.amount as prior_amount, l.balance_after as prior_balance
      from checked c
      -- Lateral with a limit (which keeps the planner from turning it back into a join): one
      -- probe of ledger_spend_key per event, whatever the statistics say (the join was planned
      -- as a scan of every usage entry on a table not yet analyzed).
      left join lateral (
        select x.id, x.amount, x.balance_after from credits.ledger x
         where x.user_id = c.user_id and x.kind = 'usage' and x.idempotency_key = c.key
         limit 1) l
        on c.known and c.valid
  ), ranked as (
    -- The first event of each (user, key) is the one that counts (dup = 1); a key used before
    -- this call answers its first result. Later events with the key answer what the first got.
    select p.*,
           row_number() over w as dup,
           first_value(p.amount) over w as first_amount,
           first_value(p.prior_id) over w as first_prior_id,
           first_value(p.prior_amount) over w as first_prior_amount,
           first_value(p.prior_balance) over w as first_prior_balance
      from prior p
    window w as (partition by p.user_id, p.key, p.known and p.valid order by p.n)
  ), sums as (
    select r.user_id, r.n, r.amount, r.key, r.description, r.start,
           sum(r.amount) over (partition by r.user_id order by r.n) as cum,
           row_number() over (partition by r.user_id order by r.n) as k
      from ranked r
     where r.dup = 1 and r.known and r.valid and r.prior_id is null
  ), flagged as (
    -- Users whose events do not all fit need the event-by-event walk; the others take all.
    select s.*, max(s.cum - s.start) over (partition by s.user_id) > 0 as tight from sums s
  ), walk (user_id, k, n, ok, room) as (
    select f.user_id, f.k, f.n, f.amount <= f.start,
           f.start - case when f.amount <= f.start then f.amount else 0 end
      from flagged f where f.tight and f.k = 1
    union all
    select f.user_id, f.k, f.n, f.amount <= w.room,
           w.room - case when f.amount <= w.room then f.amount else 0 end
      from walk w join flagged f on f.user_id = w.user_id and f.k = w.k + 1 and f.tight
  ), applied as (
    select f.user_id, f.n, f.amount, f.key, f.description, f.start,
           sum(f.amount) over (partition by f.user_id order by f.n) as upto
      from flagged f
      left join walk w on w.n = f.n
     where not f.tight or w.ok
  ), draws as (
    -- The event's credits are the interval (upto - amount, upto] of its user's applied running
    -- total; a grant's are (upto - remaining, upto] of the running total of the user's spendable
    -- grants in spending order. Each event reads only its own user's grants (an index range), so
    -- the cost grows with the events, whatever the plan's row estimates say.
    select a.user_id, a.n, s.id as grant_id, s.upto as grant_upto,
           least(a.upto, s.upto) - greatest(a.upto - a.amount, s.upto - s.remaining) as take
      from applied a
     cross join lateral (
       select g.id, g.remaining,
              sum(g.remaining) over (order by g.expires_at nulls last, g.id) as upto
         from credits.grants g
        where g.user_id = a.user_id and g.expired_at is null and g.remaining > 0
          and (g.expires_at is null or g.expires_at > p_now)) s
     where s.upto - s.remaining < a.upto and s.upto > a.upto - a.amount
  ), draws_by_event as (
    -- One JSON object keyed by event position: looked up per event, never joined (a join of
    -- two CTEs is planned on guessed row counts and became a nested loop over all of them).
    select jsonb_object_agg(x.n::text, x.draws) as map
      from (select d.n, jsonb_agg(jsonb_build_object('grant', d.grant_id, 'amount', d.take)
                                  order by d.grant_upto) as draws
              from draws d group by d.n) x
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
    select a.user_id, 'usage', -a.amount, a.start - a.upto, a.description, p_now, a.key,
           (select m.map from draws_by_event m) -> a.n::text
      from applied a
     order by a.user_id, a.n
    returning credits.ledger.id, credits.ledger.user_id, credits.ledger.idempotency_key,
              credits.ledger.balance_after
  ), made as (
    select jsonb_object_agg(e.user_id::text || ' ' || e.idempotency_key,
                            jsonb_build_array(e.id, e.balance_after)) as map
      from entries e
  )
  select r.n,
         case
           when not r.valid then 'invalid'
           when not r.known then 'unknown_user'
           when r.amount <> r.first_amount then 'idempotency_key_reused'
           when r.first_prior_id is not null and r.first_prior_amount <> r.first_amount
             then 'idempotency_key_reused'
           when r.first_prior_id is not null or e.made is not null then 'ok'
           else 'insufficient_credits'
         end,
         case when r.known and r.valid and r.amount = r.first_amount
                   and (r.first_prior_id is null or r.first_prior_amount = r.first_amount)
              then coalesce(r.first_prior_balance, (e.made ->> 1)::bigint) end,
         case when r.known and r.valid and r.amount = r.first_amount
                   and (r.first_prior_id is null or r.first_prior_amount = r.first_amount)
              then coalesce(r.first_prior_id, (e.made ->> 0)::bigint) end
    from ranked r
   cross join lateral (
     select case when r.known and r.valid
                 then (select m.map from made m) -> (r.user_id::text || ' ' || r.key) end as made
   ) e
   order by r.n;
end
$$;
