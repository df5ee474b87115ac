-- Accounts: sign-up with its starting credits and its per-address limit, sessions, failed-login
-- lock, email verification, and the purge of the limits' old rows.

-- How long a session lives without use, and how often its expiry is pushed forward. Constants:
-- effects, errors and locks none.
create function app.session_lifetime() returns interval
language sql immutable parallel safe as $$ select interval '30 days' $$;

create function app.session_renew_after() returns interval
language sql immutable parallel safe as $$ select interval '1 day' $$;

-- app.signup_check_limit(p_address, p_limit_per_hour, p_now)
-- The SIGNUP_LIMIT_PER_HOUR rule: an address (null counts as '::') may make p_limit_per_hour
--   sign-ups within the hour before p_now (0: no limit).
-- Errors: AC001 when it has made them already; the DETAIL is the number of seconds until its
--   oldest sign-up of that hour leaves it (the Retry-After).
-- Reads only. app.signup calls it under the address's lock; the web layer calls it once before,
--   so that a refused sign-up costs no password hash.
create function app.signup_check_limit(p_address inet, p_limit_per_hour integer,
                                       p_now timestamptz default now())
returns void
language plpgsql stable
as $$
declare
  v_count integer;
  v_oldest timestamptz;
begin
  if coalesce(p_limit_per_hour, 0) <= 0 then
    return;
  end if;
  select count(*), min(s.signed_up_at) into v_count, v_oldest
    from app.signup_log s
   where s.address = coalesce(p_address, '::'::inet) and s.signed_up_at > p_now - interval '1 hour';
  if v_count >= p_limit_per_hour then
    raise exception using
      errcode = 'AC001',
      message = 'too many sign-ups from this address; try again later',
      detail = greatest(1, ceil(extract(epoch from v_oldest + interval '1 hour' - p_now)))::text;
  end if;
end
$$;

-- app._signup_grants(p_user_id, p_now)
-- The starting credits of every new account (CONTRACT.md section 4, "Sign-up"): the sign-up gift
--   and the free plan's credits for p_now's UTC month. app.signup and api.put_customer both call
--   it, so a web sign-up and an API customer start alike.
-- Effects: up to two grants (none when the plans file gives 0 credits), each expiring after its
--   days from p_now. Returns nothing. Errors: 23503 for an unknown user.
-- Idempotency keys: signup_gift:<user>, free_monthly:<user>:<YYYY-MM> (a repeat grants nothing).
-- Locks: as credits.grant_once: the batch lock (shared), then the user's balance row.
create function app._signup_grants(p_user_id uuid, p_now timestamptz) returns void
language plpgsql
as $$
declare
  v_settings billing.settings;
  v_free billing.plans;
begin
  select * into v_settings from billing.settings;
  if v_settings.signup_gift_credits > 0 then
    perform credits.grant(p_user_id => p_user_id, p_amount => v_settings.signup_gift_credits,
                          p_kind => 'signup_gift',
                          p_source_key => credits.signup_gift_key(p_user_id),
                          p_expires_at => credits.add_days_utc(p_now, v_settings.signup_gift_days));
  end if;

  select * into v_free from billing.plans where kind = 'free' and active;
  if v_free.monthly_credits > 0 then
    perform credits.grant(p_user_id => p_user_id, p_amount => v_free.monthly_credits,
                          p_kind => 'free_monthly',
                          p_source_key => credits.free_monthly_key(p_user_id, p_now),
                          p_expires_at => credits.add_days_utc(p_now, v_free.credits_expire_days));
  end if;
end
$$;

-- app.signup(p_email, p_password_hash, p_name, p_now, p_session_token_hash, p_client_address,
--            p_limit_per_hour)
-- Effects: creates the user (email lower-cased and trimmed), grants its starting credits
--   (app._signup_grants), opens a session when a token hash is given, and records
--   the sign-up for its client address (app.signup_log), all in this one transaction.
-- Returns: the new user's id.
-- Errors: AC001 when the address has made p_limit_per_hour sign-ups in the last hour
--   (app.signup_check_limit; 0: no limit), 23505 when the email is taken; either creates nothing.
-- Idempotency keys of the grants: signup_gift:<user>, free_monthly:<user>:<YYYY-MM>.
-- Locks: the address's advisory lock (transaction-scoped, key (1, hashtext(address))), so that
--   parallel sign-ups from one address are counted one after the other; then the new user's
--   balance row (through credits.grant).
create function app.signup(p_email text, p_password_hash text, p_name text default '',
                           p_now timestamptz default now(),
                           p_session_token_hash bytea default null,
                           p_client_address inet default null,
                           p_limit_per_hour integer default 0) returns uuid
language plpgsql
as $$
declare
  v_user_id uuid;
  v_address inet := coalesce(p_client_address, '::'::inet);
begin
  if coalesce(p_limit_per_hour, 0) > 0 then
    perform app.lock_signup_address(v_address);
    perform app.signup_check_limit(v_address, p_limit_per_hour, p_now);
  end if;
  insert into app.users (email, password_hash, name, created_at)
  values (lower(trim(p_email)), p_password_hash, coalesce(p_name, ''), p_now)
  returning id into v_user_id;
  insert into app.signup_log (address, signed_up_at) values (v_address, p_now);

  perform app._signup_grants(v_user_id, p_now);
  if p_session_token_hash is not null then
    perform app.open_session(v_user_id, p_session_token_hash, p_now);
  end if;
  return v_user_id;
end
$$;

-- The failed-login limit (docs/api.md#accounts-and-sessions): at most login_max_attempts()
-- passwords checked per email within login_window(); reaching it with failures locks the email for
-- login_window(). Constants: effects, errors and locks none.
create function app.login_window() returns interval
language sql immutable parallel safe as $$ select interval '15 minutes' $$;

create function app.login_max_attempts() returns integer
language sql immutable parallel safe as $$ select 5 $$;

-- app.login_begin(p_email, p_now)
-- Effects: when the email may try a password, records a pending attempt, which counts as a
--   failure until app.login_succeeded forgets it (or app.login_abandoned, when no password was
--   checked after all). Recording and checking the limit are one step under the email's row
--   lock, so however many logins arrive together, at most login_max_attempts() are admitted
--   within login_window().
-- Returns one row: attempt_id (null when refused), locked_until (when refused: the end of the
--   lock, or when the oldest counted attempt leaves the window), and the account's id and
--   password hash (null when there is no such account, or when refused).
-- Idempotency: none needed; each call is one attempt. Locks: the email's row in app.login_locks
--   (upsert, created on the first attempt), then its rows in app.login_failures.
create function app.login_begin(p_email text, p_now timestamptz default now())
returns table (attempt_id uuid, locked_until timestamptz, user_id uuid, password_hash text)
language plpgsql
as $$
declare
  v_email text := lower(trim(p_email));
  v_locked_until timestamptz;
  v_counted integer;
  v_oldest timestamptz;
begin
  insert into app.login_locks as l (email, locked_until) values (v_email, '-infinity')
  on conflict (email) do update set locked_until = l.locked_until
  returning l.locked_until into v_locked_until;
  if v_locked_until > p_now then
    return query select null::uuid, v_locked_until, null::uuid, null::text;
    return;
  end if;
  select count(*), min(f.failed_at) into v_counted, v_oldest
    from app.login_failures f
   where f.email = v_email and f.failed_at > p_now - app.login_window();
  if v_counted >= app.login_max_attempts() then
    return query select null::uuid, v_oldest + app.login_window(), null::uuid, null::text;
    return;
  end if;
  return query
  with attempt as (
    insert into app.login_failures (email, failed_at, pending) values (v_email, p_now, true)
    returning login_failures.attempt_id
  )
  select a.attempt_id, null::timestamptz, u.id, u.password_hash
    from attempt a
    left join app.users u on u.email = v_email;
end
$$;

-- app.login_failed(p_email, p_attempt_id, p_now)
-- Effects: marks the attempt as a failure (records it again when a success forgot it meanwhile);
--   when the email then has login_max_attempts() failures within login_window(), locks its
--   logins for login_window() from p_now and forgets the counted failures.
-- Returns: the end of the lock, or null when not locked.
-- Locks: the email's row in app.login_locks, then its rows in app.login_failures.
create function app.login_failed(p_email text, p_attempt_id uuid,
                                 p_now timestamptz default now())
returns timestamptz
language plpgsql
as $$
declare
  v_email text := lower(trim(p_email));
  v_failures integer;
  v_until timestamptz;
begin
  insert into app.login_locks as l (email, locked_until) values (v_email, '-infinity')
  on conflict (email) do update set locked_until = l.locked_until;
  insert into app.login_failures (attempt_id, email, failed_at, pending)
  values (p_attempt_id, v_email, p_now, false)
  on conflict (attempt_id) do update set pending = false;
  select count(*) into v_failures from app.login_failures
   where email = v_email and not pending and failed_at > p_now - app.login_window();
  if v_failures >= app.login_max_attempts() then
    v_until := p_now + app.login_window();
    update app.login_locks set locked_until = v_until where email = v_email;
    delete from app.login_failures where email = v_email;
  end if;
  return v_until;
end
$$;

-- app.login_abandoned(p_attempt_id): forgets a pending attempt whose password was never checked
-- (the server was too busy to hash it). Returns nothing. Errors none. Idempotent (a repeat finds
-- nothing). Locks: the attempt's row.
create function app.login_abandoned(p_attempt_id uuid) returns void
language sql
as $$ delete from app.login_failures where attempt_id = p_attempt_id and pending $$;

-- app.login_succeeded(p_user_id, p_token_hash, p_now)
-- Effects: forgets the email's failed and pending logins and opens a session.
-- Returns: the session's expiry.
-- Locks: the email's row in app.login_locks, then its rows in app.login_failures, then (through
--   open_session) the user's sessions.
create function app.login_succeeded(p_user_id uuid, p_token_hash bytea,
                                    p_now timestamptz default now())
returns timestamptz
language plpgsql
as $$
declare
  v_email text := (select email from app.users where id = p_user_id);
begin
  perform 1 from app.login_locks where email = v_email for update;
  delete from app.login_failures where email = v_email;
  return app.open_session(p_user_id, p_token_hash, p_now);
end
$$;

-- app.purge_login_and_signup_limits(p_now)
-- Effects: deletes the rows the limits no longer read: login attempts older than login_window(),
--   login locks that have ended (the next attempt recreates the row), and sign-up records older
--   than an hour. Called by the daily run.
-- Returns: how many rows it deleted. Idempotent.
-- Locks: the deleted rows (each table on its own; a login in flight on an email waits, or is
--   waited for).
create function app.purge_login_and_signup_limits(p_now timestamptz default now())
returns integer
language sql
as $$
  with failures as (
    delete from app.login_failures where failed_at <= p_now - app.login_window() returning 1
  ), locks as (
    delete from app.login_locks where locked_until <= p_now returning 1
  ), signups as (
    delete from app.signup_log where signed_up_at <= p_now - interval '1 hour' returning 1
  )
  select ((select count(*) from failures) + (select count(*) from locks)
          + (select count(*) from signups))::integer
$$;

-- app.open_session(p_user_id, p_token_hash, p_now)
-- Effects: stores a new session (only the token's hash) and removes the user's expired ones.
-- Returns: the session's expiry. Errors: 23503 for an unknown user.
-- Idempotency: none needed (each call is one session; a token hash is unique). Locks: the rows
--   it deletes and inserts (the user's sessions).
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
-- Errors none. Idempotent (a repeat within session_renew_after() writes nothing). Locks: the
--   session's row, when it renews it.
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

-- app.close_session(p_user_id, p_token_hash): deletes the session. Returns nothing. Errors none.
-- Idempotent (a repeat finds nothing). Locks: the session's row.
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
