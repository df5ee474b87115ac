-- Spending through the server-to-server API (CONTRACT.md section 8, "Spending"): the JSON bodies
-- of /api/v1's consume, batch, reservation, refund and balance routes, one call per request. The
-- rules are the credits.* functions these call; here the customer and the feature are resolved
-- and the answer shaped.

-- api._amount(p_amount, p_feature, p_quantity) -> the credits asked for: p_amount, or the
--   feature's cost × p_quantity (default 1). Errors: 22023 when both or neither are given;
--   CR006 unknown feature (credits.feature_cost). Reads only.
create function api._amount(p_amount bigint, p_feature text, p_quantity bigint) returns bigint
language plpgsql stable
as $$
begin
  if (p_amount is null) = (p_feature is null) then
    perform credits.raise_invalid('give either amount or feature (with quantity)');
  end if;
  if p_feature is not null then
    return credits.feature_cost(p_feature, coalesce(p_quantity, 1));
  end if;
  return p_amount;
end
$$;

-- api.usage_batch(p_events, p_now)
-- Inputs: a JSON array of {"customer": externalId, "amount"? | "feature"? + "quantity"?,
--   "idempotencyKey", "description"?} in the order sent (the batch route, or single consumptions
--   the server coalesced).
-- Effects: resolves each event's customer and amount (a feature's cost × quantity), then
--   credits.consume_batch: each event is its own consumption, applied or refused on its own.
-- Returns a JSON array, one object per event in order: {"idempotencyKey", "status", "balance"?,
--   "usageId"?} with status ok | insufficient_credits | customer_not_found | unknown_feature |
--   idempotency_key_reused | invalid (amount or key unusable, or both or neither of amount and
--   feature). The batch route answers the last three as "invalid".
-- Idempotency key: (customer, idempotencyKey), as credits.consume_batch.
-- Locks: credits.consume_batch's (the customers' balance rows in user_id order, then grants).
-- plpgsql rather than sql: its statement's plan is kept for the session, not made per call.
create function api.usage_batch(p_events jsonb, p_now timestamptz default now()) returns jsonb
language plpgsql
-- One plan for every call: planning these statements anew per call cost more than running
-- them (custom plans gain nothing here: the events are one parameter whatever they hold).
set plan_cache_mode = force_generic_plan
as $$
begin
  return (
  with ev as (
    select t.n, t.e, u.id as user_id, f.credits as feature_credits,
           case when jsonb_typeof(t.e -> 'quantity') = 'number'
                 and (t.e ->> 'quantity') ~ '^[1-9][0-9]{0,15}$'
                then (t.e ->> 'quantity')::numeric
                when t.e -> 'quantity' is null then 1 end as quantity
      from jsonb_array_elements(p_events) with ordinality as t (e, n)
      -- Lateral with a limit (not flattened into a join): an index probe per event, never a
      -- scan of all users, whatever the statistics say.
      left join lateral (select x.id from app.users x where x.external_id = t.e ->> 'customer'
                          limit 1) u on true
      left join billing.features f on f.id = t.e ->> 'feature' and f.active
  ), judged as (
    select ev.*,
           case when ev.user_id is null then 'customer_not_found'
                when (ev.e ? 'amount') = (ev.e ? 'feature') then 'invalid'
                when ev.e ? 'feature' and ev.feature_credits is null then 'unknown_feature'
                when ev.e ? 'feature' and (ev.quantity is null
                       or ev.feature_credits * ev.quantity > 9007199254740991) then 'invalid'
           end as refused
      from ev
  ), resolved as (
    -- A refused event goes on with no user, so that it takes nothing and keeps its place.
    select j.n, j.e ->> 'idempotencyKey' as key, j.refused,
           jsonb_build_object(
             'user', case when j.refused is null then j.user_id end,
             'key', j.e -> 'idempotencyKey', 'description', j.e -> 'description',
             'amount', case when j.e ? 'feature' then to_jsonb(j.feature_credits * j.quantity)
                            else j.e -> 'amount' end) as event
      from judged j
  ), consumed as (
    select c.n, c.status, c.balance, c.usage_id
      from credits.consume_batch(
             (select coalesce(jsonb_agg(r.event order by r.n), '[]') from resolved r), p_now) c
  )
  select coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
           'idempotencyKey', r.key,
           'status', coalesce(r.refused, case c.status when 'unknown_user' then 'customer_not_found'
                                                       else c.status end),
           'balance', case when r.refused is null then c.balance end,
           'usageId', case when r.refused is null then c.usage_id end))
         order by r.n), '[]')
    from resolved r
    join consumed c on c.n = r.n);
end
$$;

-- api.reserve(p_external_id, p_amount, p_feature, p_quantity, p_idempotency_key, p_ttl_seconds,
--             p_description, p_now)
-- Effects: credits.reserve for the customer (the amount, or the feature's cost × quantity).
-- Returns {"created", "reservation": {id, amount, expiresAt, balance, reserved}} (balance without
--   the held credits). Idempotency key: as credits.reserve (the same key answers the same
--   reservation, created false). Errors: CU001, 22023, CR006, CR001, CR002.
-- Locks: as credits.reserve.
create function api.reserve(p_external_id text, p_amount bigint, p_feature text,
                            p_quantity bigint, p_idempotency_key text, p_ttl_seconds integer,
                            p_description text default null, p_now timestamptz default now())
returns jsonb
language plpgsql
as $$
declare
  v_user uuid := api.customer_user(p_external_id);
  v_made record;
begin
  select * into v_made
    from credits.reserve(v_user, api._amount(p_amount, p_feature, p_quantity), p_idempotency_key,
                         p_ttl_seconds, p_description, p_now);
  return (select jsonb_build_object(
                   'created', v_made.created,
                   'reservation', jsonb_build_object(
                     'id', r.id, 'amount', r.amount, 'expiresAt', app.iso(r.expires_at),
                     'balance', credits.balance(v_user, p_now),
                     'reserved', credits.reserved(v_user, p_now)))
            from credits.reservations r
           where r.user_id = v_user and r.id = v_made.reservation_id);
end
$$;

-- api.settle(p_reservation_id, p_amount, p_description, p_now) -> {"balance", "usageId",
--   "settled"}: credits.settle. Errors: CR007, 22023, CR003, CR004. Locks as credits.settle.
create function api.settle(p_reservation_id bigint, p_amount bigint,
                           p_description text default null, p_now timestamptz default now())
returns jsonb
language plpgsql
as $$
begin
  return (
  select jsonb_build_object('balance', s.balance, 'usageId', s.usage_id, 'settled', s.settled)
      from credits.settle(p_reservation_id, p_amount, p_description, p_now) s);
end
$$;

-- api.release(p_reservation_id, p_now) -> {"balance"}: credits.release. Errors: CR007, CR004.
create function api.release(p_reservation_id bigint, p_now timestamptz default now())
returns jsonb
language plpgsql
as $$
begin
  return (
  select jsonb_build_object('balance', credits.release(p_reservation_id, p_now)));
end
$$;

-- api.refund_usage(p_usage_id, p_amount, p_idempotency_key, p_now) -> {"refunded", "balance"}:
--   credits.refund_usage (p_amount null: all the usage has left to give back). Errors: CR007,
--   22023, CR005, CR002. Idempotency and locks as there.
create function api.refund_usage(p_usage_id bigint, p_amount bigint, p_idempotency_key text,
                                 p_now timestamptz default now())
returns jsonb
language plpgsql
as $$
begin
  return (
  select jsonb_build_object('refunded', r.refunded, 'balance', r.balance)
      from credits.refund_usage(p_usage_id, p_amount, p_idempotency_key, null, p_now) r);
end
$$;

-- api.balance_at(p_external_id, p_at, p_now) -> {"balance", "reserved", "at"}: credits.balance_at
--   at p_at (null: p_now). Errors: CU001. Reads only.
create function api.balance_at(p_external_id text, p_at timestamptz,
                               p_now timestamptz default now())
returns jsonb
language plpgsql stable
as $$
begin
  return (
  select jsonb_build_object('balance', b.balance, 'reserved', b.reserved,
                              'at', app.iso(coalesce(p_at, p_now)))
      from credits.balance_at(api.customer_user(p_external_id), coalesce(p_at, p_now), p_now) b);
end
$$;
