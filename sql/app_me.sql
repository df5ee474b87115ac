-- What a signed-in user reads of their account, as JSON for the API, and the one date format.
-- "Reads only" in a contract below means: no effects, so no idempotency key; no locks (it reads
-- committed rows under its statement's snapshot); no errors unless it names some.

-- app.iso(p_at): ISO 8601 in UTC with milliseconds, the form JavaScript's Date prints (null for
-- null). Pure: effects, errors and locks none.
create function app.iso(p_at timestamptz) returns text
language sql immutable parallel safe
as $$ select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- app.me(p_user_id, p_now) -> {id, email, plan: {id, kind, status, renewsAt}, balance}
-- email is null for an API customer created without one (CONTRACT.md section 8).
-- Reads only. Errors: 23503 for an unknown user.
create function app.me(p_user_id uuid, p_now timestamptz default now()) returns jsonb
language plpgsql stable
as $$
begin
  return (
  select jsonb_build_object(
             'id', u.id, 'email', u.email,
             'plan', (select jsonb_build_object('id', p.plan_id, 'kind', p.kind, 'status', p.status,
                                                'renewsAt', app.iso(p.renews_at))
                        from billing.plan_of(u.id, p_now) p),
             'balance', credits.balance(u.id, p_now))
      from app.users u
     where u.id = p_user_id);
end
$$;
