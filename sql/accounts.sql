-- Accounts: sign-up with its starting credits, sessions, failed-login lock, daily sign-in.

-- How long a session lives without use, and how often its expiry is pushed forward.
create function app.session_lifetime() returns interval
language sql immutable parallel safe as $$ select interval '30 days' $$;

create function app.session_renew_after() returns interval
language sql immutable parallel safe as $$ select interval '1 day' $$;

-- app.signup(p_email, p_password_hash, p_name, p_now, p_session_token_hash)
-- Effects: creates the user (email lower-cased and trimmed), grants the sign-up gift and the free
--   plan's credits for p_now's UTC month, and opens a session when a token hash is given, all in
--   this one transaction.
-- Returns: the new user's id.
-- Errors: 23505 when the email is taken (nothing is created).
-- Idempotency keys of the grants: signup_gift:<user>, free_monthly:<user>:<YYYY-MM>.
-- Locks: the new user's balance row (through credits.grant).
create function app.signup(p_email text, p_password_hash text, p_name text default '',
                           p_now timestamptz default now(),
                           p_session_token_hash bytea default null) returns uuid
language plpgsql
as $$
declare
  v_user_id uuid;
  v_settings billing.settings;
  v_free billing.plans;
begin
  insert into app.users (email, password_hash, name, created_at)
  values (lower(trim(p_email)), p_password_hash, coalesce(p_name, ''), p_now)
  returning id into v_user_id;

  select * into v_settings from billing.settings;
  if v_settings.signup_gift_credits > 0 then
    perform credits.grant(v_user_id, v_settings.signup_gift_credits, 'signup_gift',
                          'signup_gift:' || v_user_id,
                          credits.add_days_utc(p_now, v_settings.signup_gift_days));
  end if;

  select * into v_free from billing.plans where kind = 'free' and active;
  if v_free.monthly_credits > 0 then
    perform credits.grant(v_user_id, v_free.monthly_credits, 'free_monthly',
                          credits.free_monthly_key(v_user_id, p_now),
                          credits.add_days_utc(p_now, v_free.credits_expire_days));
  end if;
  if p_session_token_hash is not null then
    perform app.open_session(v_user_id, p_session_token_hash, p_now);
  end if;
  return v_user_id;
end
$$;

-- app.login_lookup(p_email, p_now)
-- Returns one row: when the email's login lock ends (null when logins may be tried), and the
-- account's id and password hash (null when there is no such account). Reads only.
create function app.login_lookup(p_email text, p_now timestamptz default now())
returns table (locked_until timestamptz, user_id uuid, password_hash text)
language sql stable
as $$
  select (select l.locked_until from app.login_locks l
           where l.email = lower(trim(p_email)) and l.locked_until > p_now),
         u.id, u.password_hash
    from (select 1) one
    left join app.users u on u.email = lower(trim(p_email))
$$;

-- app.login_failed(p_email, p_now)
-- Effects: records a failed login; when it is the 5th within 15 minutes, locks the email's logins
--   for 15 minutes from p_now and forgets the counted failures.
-- Returns: the end of the lock, or null when not locked.
-- Locks: the email's row in app.login_locks (upsert), so concurrent failures count once each.
create function app.login_failed(p_email text, p_now timestamptz default now())
returns timestamptz
language plpgsql
as $$
declare
  v_email text := lower(trim(p_email));
  v_failures integer;
  v_until timestamptz;
begin
  -- Serialise failures of one email: the lock row exists from the first failure on.
  insert into app.login_locks (email, locked_until) values (v_email, '-infinity')
  on conflict (email) do nothing;
  perform 1 from app.login_locks where email = v_email for update;

  insert into app.login_failures (email, failed_at) values (v_email, p_now)
  on conflict do nothing;
  delete from app.login_failures where email = v_email and failed_at <= p_now - interval '15 minutes';
  select count(*) into v_failures from app.login_failures where email = v_email;
  if v_failures >= 5 then
    v_until := p_now + interval '15 minutes';
    update app.login_locks set locked_until = v_until where email = v_email;
    delete from app.login_failures where email = v_email;
  end if;
  return v_until;
end
$$;

-- app.login_succeeded(p_user_id, p_token_hash, p_now)
-- Effects: forgets the email's failed logins and opens a session.
-- Returns: the session's expiry.
create function app.login_succeeded(p_user_id uuid, p_token_hash bytea,
                                    p_now timestamptz default now())
returns timestamptz
language plpgsql
as $$
begin
  delete from app.login_failures
   where email = (select email from app.users where id = p_user_id);
  return app.open_session(p_user_id, p_token_hash, p_now);
end
$$;

-- app.open_session(p_user_id, p_token_hash, p_now)
-- Effects: stores a new session (only the token's hash) and removes the user's expired ones.
-- Returns: the session's expiry. Errors: 23503 for an unknown user.
create function app.open_session(p_user_id uuid, p_token_hash bytea,
                                 p_now timestamptz default now())
returns timestamptz
language plpgsql
as $$
declare
  v_expires timestamptz := p_now + app.session_lifetime();
begin
  delete from app.sessions where user_id = p_user_id and expires_at <= p_now;
  insert into app.sessions (user_id, token_hash, created_at, last_seen_at, expires_at)
  values (p_user_id, p_token_hash, p_now, p_now, v_expires);
  return v_expires;
end
$$;

-- app.session_user(p_user_id, p_token_hash, p_now)
-- Returns the session's user (id, email), when the session was renewed by this call its new
--   expiry (renewed_until; null when unchanged), and whether the user's email is verified (the
--   admin check needs it). No row for an unknown or expired session.
-- Effects: pushes expires_at forward at most once per session_renew_after(), so that a busy
--   session does not write on every request.
create function app.session_user(p_user_id uuid, p_token_hash bytea,
                                 p_now timestamptz default now())
returns table (id uuid, email text, renewed_until timestamptz, verified boolean)
language plpgsql
as $$
begin
  return query
  with found as (
    select s.user_id, s.last_seen_at from app.sessions s
     where s.user_id = p_user_id and s.token_hash = p_token_hash and s.expires_at > p_now
  ), renewed as (
    update app.sessions s
       set last_seen_at = p_now, expires_at = p_now + app.session_lifetime()
      from found f
     where s.user_id = f.user_id and s.token_hash = p_token_hash
       and f.last_seen_at <= p_now - app.session_renew_after()
    returning s.expires_at
  )
  select u.id, u.email, (select r.expires_at from renewed r), u.email_verified_at is not null
    from found f join app.users u on u.id = f.user_id;
end
$$;

-- app.close_session(p_user_id, p_token_hash): deletes the session. Idempotent.
create function app.close_session(p_user_id uuid, p_token_hash bytea) returns void
language sql
as $$ delete from app.sessions where user_id = p_user_id and token_hash = p_token_hash $$;

-- app.verify_email(p_email, p_now)
-- Effects: marks the account of p_email (trimmed, lower-cased) verified at p_now, unless it is
--   already (the first verification is kept). `deno task users verify EMAIL` calls it.
-- Returns one row: the user's id, the address, when it was verified, and whether it already was.
-- Errors: 23503 when no account has that email (nothing changes). Idempotent.
-- Locks: the user's row.
create function app.verify_email(p_email text, p_now timestamptz default now())
returns table (user_id uuid, email text, verified_at timestamptz, already boolean)
language plpgsql
as $$
declare
  v_email text := lower(trim(p_email));
  v_user uuid;
  v_at timestamptz;
begin
  select u.id, u.email_verified_at into v_user, v_at
    from app.users u where u.email = v_email for update;
  if not found then
    raise exception using errcode = '23503',
      message = format('no account with the email %s', v_email);
  end if;
  if v_at is null then
    update app.users u set email_verified_at = p_now where u.id = v_user;
  end if;
  return query select v_user, v_email, coalesce(v_at, p_now), v_at is not null;
end
$$;

-- credits.daily_signin(p_user_id, p_now)
-- Effects: grants dailySignin.credits once per user per UTC day, expiring after
--   dailySignin.expiresInDays.
-- Returns: granted (0 when already taken today or when the plans file has no daily sign-in) and
--   the balance at p_now.
-- Idempotency key: daily_signin:<user>:<YYYY-MM-DD in UTC>. Locks: the user's balance row.
create function credits.daily_signin(p_user_id uuid, p_now timestamptz default now())
returns table (granted bigint, balance bigint)
language plpgsql
as $$
declare
  v_credits bigint;
  v_days integer;
  v_key text := 'daily_signin:' || p_user_id || ':' || to_char(p_now at time zone 'UTC', 'YYYY-MM-DD');
begin
  select s.daily_signin_credits, s.daily_signin_days into v_credits, v_days from billing.settings s;
  granted := 0;
  if coalesce(v_credits, 0) > 0 then
    select case when g.created then v_credits else 0 end into granted
      from credits.grant_once(p_user_id, v_credits, 'daily_signin', v_key,
                              credits.add_days_utc(p_now, v_days)) g;
  end if;
  balance := credits.balance(p_user_id, p_now);
  return next;
end
$$;
