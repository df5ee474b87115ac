-- What a signed-in user reads: their account, credits and history, as JSON for the API.

-- ISO 8601 in UTC with milliseconds, the form JavaScript's Date prints.
create function app.iso(p_at timestamptz) returns text
language sql immutable parallel safe
as $$ select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- How far ahead "expiring soon" looks.
create function credits.expiring_soon_window() returns interval
language sql immutable parallel safe as $$ select interval '7 days' $$;

-- app.me(p_user_id, p_now) -> {id, email, plan: {id, kind, status, renewsAt}, balance}
-- Reads only. Errors: 23503 for an unknown user.
create function app.me(p_user_id uuid, p_now timestamptz default now()) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
           'id', u.id, 'email', u.email,
           'plan', (select jsonb_build_object('id', p.plan_id, 'kind', p.kind, 'status', p.status,
                                              'renewsAt', app.iso(p.renews_at))
                      from billing.plan_of(u.id, p_now) p),
           'balance', credits.balance(u.id, p_now))
    from app.users u
   where u.id = p_user_id
$$;

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
