-- Customers of the server-to-server API (CONTRACT.md section 8, "Customers" and "Granting"):
-- app.users rows that the app names by external_id, answered as the JSON bodies of /api/v1, one
-- call per request. The credit rules stay in credits.*; these functions find the customer and
-- shape the answer. "Reads only" below means: no effects, so no idempotency key; no locks.

-- api._raise_customer_not_found(p_external_id): CU001 (HTTP 404 customer_not_found).
create function api._raise_customer_not_found(p_external_id text) returns void
language plpgsql
as $$
begin
  raise exception using errcode = 'CU001', message = format('unknown customer %L', p_external_id);
end
$$;

-- api._raise_email_taken(p_email): CU002 (HTTP 409 email_taken).
create function api._raise_email_taken(p_email text) returns void
language plpgsql
as $$
begin
  raise exception using errcode = 'CU002',
    message = format('the email %s belongs to another customer or user', p_email);
end
$$;

-- api.customer_user(p_external_id)
-- Returns: the user id of the customer, for the routes that reuse the web code with it (checkout,
--   portal). Errors: CU001 when no customer has that externalId. Reads only.
create function api.customer_user(p_external_id text) returns uuid
language plpgsql stable
as $$
declare
  v_user uuid;
begin
  select u.id into v_user from app.users u where u.external_id = p_external_id;
  if not found then
    perform api._raise_customer_not_found(p_external_id);
  end if;
  return v_user;
end
$$;

-- api._customer_body(p_user_id, p_now) -> {id, externalId, email, plan, balance, reserved}
-- plan and balance as app.me (GET /api/me) answers them; reserved: credits.reserved. Reads only.
create function api._customer_body(p_user_id uuid, p_now timestamptz) returns jsonb
language plpgsql stable
as $$
begin
  return (
  select jsonb_build_object('id', u.id, 'externalId', u.external_id, 'email', u.email,
                              'plan', m -> 'plan', 'balance', m -> 'balance',
                              'reserved', credits.reserved(u.id, p_now))
      from app.users u cross join lateral app.me(u.id, p_now) m
     where u.id = p_user_id);
end
$$;

-- api.customer(p_external_id, p_now) -> the customer body (api._customer_body).
-- Errors: CU001 for an unknown externalId. Reads only.
create function api.customer(p_external_id text, p_now timestamptz default now()) returns jsonb
language plpgsql stable
as $$
begin
  return (
  select api._customer_body(api.customer_user(p_external_id), p_now));
end
$$;

-- api.put_customer(p_external_id, p_email, p_name, p_now)
--   -> {created, customer: the customer body}
-- Inputs: the app's id for its user (1 to 255 of A-Z a-z 0-9 _ - . : @); an email (trimmed and
--   lower-cased; null or empty: none given) and a name (null: none given), both optional.
-- Effects, the first that applies:
--   1. a customer with that externalId: sets the email and the name that are given;
--   2. else a user without an externalId has the email: links that user (sets its externalId,
--      and the name if given); it keeps its credits and gets no second sign-up grant;
--   3. else creates the user (created_at p_now) with the sign-up grants of a web sign-up
--      (app._signup_grants, the same function app.signup calls).
-- Returns: created true when the externalId named no customer before this call (2 and 3: the
--   route answers 201), false for 1 (200).
-- Errors: 22023 for a malformed externalId; CU002 when the email belongs to a user with another
--   externalId, or (case 1) to any other user.
-- Idempotency: the externalId itself. Concurrent PUTs of one new externalId create one user with
--   one set of sign-up grants: the unique index on external_id makes every insert but one wait
--   for the first and then do nothing, and the loser reads the winner's row (case 1). Concurrent
--   links of one email wait on that user's row and then find it linked. A few rounds at most,
--   each only when a concurrent call changed what the previous one read.
-- Locks: the customer's (or the email's) user row; then, on creation, as credits.grant_once:
--   the batch lock (shared), then the new user's balance row.
create function api.put_customer(p_external_id text, p_email text default null,
                                 p_name text default null, p_now timestamptz default now())
returns jsonb
language plpgsql
as $$
declare
  v_email text := nullif(lower(trim(p_email)), '');
  v_user uuid;
  v_owner text;
  v_linked boolean := false;
  v_email_used boolean;
begin
  if p_external_id is null or p_external_id !~ '^[A-Za-z0-9_.:@-]{1,255}$' then
    perform credits.raise_invalid(
      'externalId must be 1 to 255 letters, digits, or any of _ - . : @');
  end if;
  for v_round in 1..5 loop
    select u.id into v_user from app.users u
     where u.external_id = p_external_id for no key update;
    if found then
      begin
        update app.users u
           set email = coalesce(v_email, u.email), name = coalesce(p_name, u.name)
         where u.id = v_user
           and (u.email is distinct from coalesce(v_email, u.email)
                or u.name is distinct from coalesce(p_name, u.name));
      exception when unique_violation then
        perform api._raise_email_taken(v_email);
      end;
      return jsonb_build_object('created', v_linked,
                                'customer', api._customer_body(v_user, p_now));
    end if;

    if v_email is not null then
      -- Waits for a concurrent link of this user, then sees its externalId.
      select u.id, u.external_id into v_user, v_owner from app.users u
       where u.email = v_email for no key update;
      v_email_used := found;
      if v_email_used and v_owner is distinct from p_external_id then
        if v_owner is not null then
          perform api._raise_email_taken(v_email);
        end if;
        begin
          update app.users u set external_id = p_external_id, name = coalesce(p_name, u.name)
           where u.id = v_user;
          v_linked := true;
        exception when unique_violation then
          -- A concurrent PUT created this externalId meanwhile: take the first branch.
          null;
        end;
      end if;
      continue when v_email_used;
    end if;

    insert into app.users (external_id, email, name, created_at)
    values (p_external_id, v_email, coalesce(p_name, ''), p_now)
    on conflict do nothing
    returning id into v_user;
    if v_user is not null then
      perform app._signup_grants(v_user, p_now);
      return jsonb_build_object('created', true, 'customer', api._customer_body(v_user, p_now));
    end if;
    -- A concurrent call created this externalId, or took the email, since we looked: look again.
  end loop;
  raise exception using errcode = '40001',
    message = format('customer %L kept changing concurrently; retry', p_external_id);
end
$$;

-- api.customer_credits(p_external_id, p_now) -> the body of GET /api/me/credits (credits.summary).
-- Errors: CU001 for an unknown externalId. Reads only.
create function api.customer_credits(p_external_id text, p_now timestamptz default now())
returns jsonb
language sql stable
as $$ select credits.summary(api.customer_user(p_external_id), p_now) $$;

-- api.customer_transactions(p_external_id, p_limit, p_cursor, p_kind)
--   -> the body of GET /api/me/transactions (credits.transactions: newest first, nextCursor).
-- Errors: CU001 for an unknown externalId. Reads only.
create function api.customer_transactions(p_external_id text, p_limit integer default 20,
                                          p_cursor bigint default null,
                                          p_kind text default null)
returns jsonb
language sql stable
as $$
  select credits.transactions(api.customer_user(p_external_id), p_limit, p_cursor, p_kind)
$$;

-- api.grant(p_external_id, p_amount, p_source_key, p_kind, p_expires_at, p_description, p_now)
--   -> {created, id: the grant's id, balance: the customer's balance at p_now}
-- Effects: grants p_amount credits of p_kind (null: 'bonus') expiring at p_expires_at (null:
--   never), through credits.grant_once; the stored key is credits.api_grant_key(p_source_key),
--   so an app's key never collides with one Tally writes.
-- Idempotency key: p_source_key, unique across all customers: the same key for the same customer
--   changes nothing and answers created false with the first grant's id (whatever the amount).
-- Errors: CU001 for an unknown externalId; 22023 for a kind other than bonus or adjustment, an
--   expiry not after p_now, a non-positive amount or an empty key; CU003 when the key is another
--   customer's, also when that customer took it concurrently (grant_once's 23505).
-- Locks: as credits.grant_once: the batch lock (shared), then the customer's balance row.
create function api.grant(p_external_id text, p_amount bigint, p_source_key text,
                          p_kind text default null, p_expires_at timestamptz default null,
                          p_description text default null, p_now timestamptz default now())
returns jsonb
language plpgsql
as $$
declare
  v_user uuid := api.customer_user(p_external_id);
  v_kind text := coalesce(p_kind, 'bonus');
  v_key text := credits.api_grant_key(p_source_key);
  v_owner uuid;
  v_grant bigint;
  v_created boolean;
begin
  if v_kind not in ('bonus', 'adjustment') then
    perform credits.raise_invalid(format('kind must be bonus or adjustment, not %L', v_kind));
  end if;
  if p_expires_at <= p_now then
    perform credits.raise_invalid('expiresAt must be in the future');
  end if;
  if p_source_key is null or p_source_key = '' then
    perform credits.raise_invalid('a grant needs a source key');
  end if;
  select g.user_id into v_owner from credits.grants g where g.source_key = v_key;
  if found and v_owner <> v_user then
    raise exception using errcode = 'CU003',
      message = format('source key %L is used by another customer', p_source_key);
  end if;
  begin
    select g.grant_id, g.created into v_grant, v_created
      from credits.grant_once(p_user_id => v_user, p_amount => p_amount, p_kind => v_kind,
                              p_source_key => v_key, p_expires_at => p_expires_at,
                              p_description => p_description) g;
  exception when unique_violation then
    raise exception using errcode = 'CU003',
      message = format('source key %L is used by another customer', p_source_key);
  end;
  return jsonb_build_object('created', v_created, 'id', v_grant,
                            'balance', credits.balance(v_user, p_now));
end
$$;
