-- What a user reads of their credits: the summary, the history and the usage by day, as JSON.
-- "Reads only" in a contract below means: no effects, so no idempotency key; no locks (it reads
-- committed rows under its statement's snapshot); no errors unless it names some.

-- How far ahead "expiring soon" looks. A constant.
create function credits.expiring_soon_window() returns interval
language sql immutable parallel safe as $$ select interval '7 days' $$;

-- credits.summary(p_user_id, p_now)
--   -> {balance, expiringSoon: {amount, before}, grants: [{id, kind, amount, remaining, expiresAt,
--      createdAt}]}
-- grants: unspent and unexpired at p_now, in the order consumption will spend them.
-- expiringSoon: what of those expires before p_now + expiring_soon_window().
-- Reads only.
create function credits.summary(p_user_id uuid, p_now timestamptz default now()) returns jsonb
language sql stable
as $$
  with spendable as (
    select g.id, g.kind, g.amount, g.remaining, g.expires_at, g.created_at
      from credits.grants g
     where g.user_id = p_user_id and g.expired_at is null and g.remaining > 0
       and (g.expires_at is null or g.expires_at > p_now)
  )
  select jsonb_build_object(
    'balance', coalesce((select sum(remaining) from spendable), 0),
    'expiringSoon', jsonb_build_object(
      'amount', coalesce((select sum(remaining) from spendable
                           where expires_at < p_now + credits.expiring_soon_window()), 0),
      'before', app.iso(p_now + credits.expiring_soon_window())),
    'grants', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', id, 'kind', kind, 'amount', amount, 'remaining', remaining,
               'expiresAt', app.iso(expires_at), 'createdAt', app.iso(created_at))
             order by expires_at nulls last, id)
        from spendable), '[]'::jsonb))
$$;

-- credits.transactions(p_user_id, p_limit, p_cursor, p_kind)
--   -> {items: [{id, kind, amount, balanceAfter, description, createdAt}], nextCursor}
-- Newest first. p_cursor is the nextCursor of the previous page (the last id shown), p_kind an
-- optional ledger kind. nextCursor is null on the last page. Reads only.
create function credits.transactions(p_user_id uuid, p_limit integer default 20,
                                     p_cursor bigint default null, p_kind text default null)
returns jsonb
language sql stable
as $$
  with page as (
    select l.id, l.kind, l.amount, l.balance_after, l.created_at,
           coalesce(l.description, credits.kind_label(l.kind)) as description
      from credits.ledger l
     where l.user_id = p_user_id
       and (p_cursor is null or l.id < p_cursor)
       and (p_kind is null or l.kind = p_kind)
     order by l.id desc
     limit p_limit + 1
  )
  select jsonb_build_object(
    'items', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', id, 'kind', kind, 'amount', amount, 'balanceAfter', balance_after,
               'description', description, 'createdAt', app.iso(created_at)) order by id desc)
        from (select * from page order by id desc limit p_limit) shown), '[]'::jsonb),
    'nextCursor', case when (select count(*) from page) > p_limit
                       then (select min(id) from (select id from page order by id desc
                                                   limit p_limit) shown)::text end)
$$;

-- credits.usage_by_day(p_user_id, p_now, p_days)
--   -> [{day: 'YYYY-MM-DD', used}] for the p_days UTC days ending with p_now's, oldest first,
-- every day present (0 when nothing was used). Reads only.
create function credits.usage_by_day(p_user_id uuid, p_now timestamptz default now(),
                                     p_days integer default 30) returns jsonb
language sql stable
as $$
  with bounds as (
    select (p_now at time zone 'UTC')::date as today,
           (p_now at time zone 'UTC')::date - (p_days - 1) as first_day
  ), used as (
    select (l.created_at at time zone 'UTC')::date as day, -sum(l.amount) as used
      from credits.ledger l, bounds b
     where l.user_id = p_user_id and l.kind = 'usage'
       and l.created_at >= (b.first_day::timestamp at time zone 'UTC')
       and l.created_at < ((b.today + 1)::timestamp at time zone 'UTC')
     group by 1
  )
  select jsonb_agg(jsonb_build_object('day', to_char(d.day, 'YYYY-MM-DD'),
                                      'used', coalesce(u.used, 0)) order by d.day)
    from bounds b
    cross join lateral (select b.first_day + i as day from generate_series(0, p_days - 1) i) d
    left join used u on u.day = d.day
$$;
