-- What the web pages read (one call per page) and the admin's credit adjustment.
-- Every page function reads only, unless its contract says otherwise.

-- app.page_nav(p_user_id, p_now) -> {balance} for pages that show nothing but the navigation.
-- A null user gives a null balance. Reads only.
create function app.page_nav(p_user_id uuid, p_now timestamptz default now()) returns jsonb
language sql stable
as $$
  select jsonb_build_object('balance',
           case when p_user_id is not null then credits.balance(p_user_id, p_now) end)
$$;

-- app.page_pricing(p_user_id, p_now) -> {balance, catalogue} for the home page. Reads only.
create function app.page_pricing(p_user_id uuid, p_now timestamptz default now()) returns jsonb
language sql stable
as $$
  select app.page_nav(p_user_id, p_now) || jsonb_build_object('catalogue', billing.catalogue())
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

-- app.page_dashboard(p_user_id, p_kind, p_cursor, p_now)
--   -> {me, credits: credits.summary, transactions: credits.transactions page (20, p_kind,
--      p_cursor), usage: credits.usage_by_day (30 days), dailySignin: {credits, takenToday},
--      balance}
-- Reads only. Errors: 23503 for an unknown user.
create function app.page_dashboard(p_user_id uuid, p_kind text default null,
                                   p_cursor bigint default null, p_now timestamptz default now())
returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'me', app.me(p_user_id, p_now),
    'balance', credits.balance(p_user_id, p_now),
    'credits', credits.summary(p_user_id, p_now),
    'transactions', credits.transactions(p_user_id, 20, p_cursor, p_kind),
    'usage', credits.usage_by_day(p_user_id, p_now, 30),
    'dailySignin', jsonb_build_object(
      'credits', coalesce((select s.daily_signin_credits from billing.settings s), 0),
      'takenToday', exists (
        select 1 from credits.grants g
         where g.source_key = credits.daily_signin_key(p_user_id, p_now))))
$$;

-- app.page_billing(p_user_id, p_now)
--   -> {me, balance, catalogue, subscription: the latest subscription or null,
--      payments: the 20 latest payments, customers: providers with a customer (for the portal)}
-- Reads only.
create function app.page_billing(p_user_id uuid, p_now timestamptz default now()) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'me', app.me(p_user_id, p_now),
    'balance', credits.balance(p_user_id, p_now),
    'catalogue', billing.catalogue(),
    'subscription', (
      select jsonb_build_object('provider', s.provider, 'planId', s.plan_id,
                                'interval', s.interval, 'status', s.status,
                                'currentPeriodEnd', app.iso(s.current_period_end),
                                'cancelAtPeriodEnd', s.cancel_at_period_end,
                                'canceledAt', app.iso(s.canceled_at))
        from billing.subscriptions s
       where s.user_id = p_user_id
       order by s.updated_at desc, s.id desc
       limit 1),
    'payments', coalesce((
      select jsonb_agg(jsonb_build_object('id', p.id, 'kind', p.kind, 'priceId', p.price_id,
                                          'amount', p.amount, 'currency', p.currency,
                                          'paidAt', app.iso(p.paid_at),
                                          'refundedAmount', p.refunded_amount,
                                          'disputed', p.disputed_at is not null)
                       order by p.paid_at desc, p.id desc)
        from (select * from billing.payments where user_id = p_user_id
               order by paid_at desc, id desc limit 20) p), '[]'),
    'customers', coalesce((
      select jsonb_agg(c.provider order by c.provider)
        from billing.customers c where c.user_id = p_user_id), '[]'))
$$;

-- app.page_checkout_status(p_user_id, p_since, p_now)
--   -> {balance, arrivals: [{kind, amount, description, createdAt}]}: the credits granted to the
-- user since p_since (the moment checkout began), newest first, for the checkout success page.
-- Reads only.
create function app.page_checkout_status(p_user_id uuid, p_since timestamptz,
                                         p_now timestamptz default now()) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'balance', credits.balance(p_user_id, p_now),
    'arrivals', coalesce((
      select jsonb_agg(jsonb_build_object('kind', l.kind, 'amount', l.amount,
                                          'description',
                                          coalesce(l.description, credits.kind_label(l.kind)),
                                          'createdAt', app.iso(l.created_at)) order by l.id desc)
        from credits.ledger l
       where l.user_id = p_user_id and l.amount > 0 and l.created_at >= p_since
         and l.kind in ('package', 'subscription_period', 'subscription_monthly',
                        'lifetime_monthly', 'trial', 'upgrade')), '[]'))
$$;

-- app.admin_users(p_query, p_now) -> [{id, email, emailVerifiedAt, createdAt, balance, plan}]:
-- at most 50 users whose email contains p_query (all when it is empty), newest first. Reads only.
create function app.admin_users(p_query text, p_now timestamptz default now()) returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', u.id, 'email', u.email, 'emailVerifiedAt', app.iso(u.email_verified_at),
           'createdAt', app.iso(u.created_at),
           'balance', credits.balance(u.id, p_now),
           'plan', (select p.plan_id from billing.plan_of(u.id, p_now) p))
         order by u.created_at desc, u.id), '[]')
    from (
      select * from app.users
       where coalesce(p_query, '') = ''
          or strpos(email, lower(trim(p_query))) > 0
       order by created_at desc, id
       limit 50
    ) u
$$;

-- app.admin_runs(p_limit) -> [{id, runAt, trigger, expired, granted, durationMs, finishedAt}]:
-- the latest daily runs, newest first. Reads only.
create function app.admin_runs(p_limit integer default 20) returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', r.id, 'runAt', app.iso(r.run_at), 'trigger', r.trigger, 'expired', r.expired,
           'granted', r.granted, 'durationMs', r.duration_ms,
           'finishedAt', app.iso(r.finished_at)) order by r.id desc), '[]')
    from (select * from credits.daily_runs order by id desc limit p_limit) r
$$;

-- app._set_flash(p_user_id, p_token_hash, p_flash, p_now)
-- Effects: keeps p_flash ({kind, ...}: what an admin action did) as the one message of that
--   session, replacing an earlier one; the next admin page of the session shows it
--   (app._take_flash). Errors: 23503 when the session does not exist. Locks: the session's
--   message row.
create function app._set_flash(p_user_id uuid, p_token_hash bytea, p_flash jsonb,
                               p_now timestamptz default now()) returns void
language sql
as $$
  insert into app.flash_messages (user_id, token_hash, flash, created_at)
  values (p_user_id, p_token_hash, p_flash, p_now)
  on conflict (user_id, token_hash) do update set flash = excluded.flash,
                                                  created_at = excluded.created_at
$$;

-- app._take_flash(p_user_id, p_token_hash, p_now) -> the session's message, or null; removes it,
-- so it is shown once. A message older than 10 minutes is removed unseen.
create function app._take_flash(p_user_id uuid, p_token_hash bytea,
                                p_now timestamptz default now()) returns jsonb
language sql
as $$
  with taken as (
    delete from app.flash_messages f
     where f.user_id = p_user_id and f.token_hash = p_token_hash
    returning f.flash, f.created_at
  )
  select t.flash from taken t where t.created_at > p_now - interval '10 minutes'
$$;

-- app.page_admin(p_admin_id, p_token_hash, p_query, p_now)
--   -> {balance, users, runs, inbox: the 50 newest failed webhook events, flash: the session's
--      message or null}. Effects: takes the session's message (app._take_flash); reads otherwise.
create function app.page_admin(p_admin_id uuid, p_token_hash bytea, p_query text,
                               p_now timestamptz default now())
returns jsonb
language sql
as $$
  select app.page_nav(p_admin_id, p_now)
         || jsonb_build_object('users', app.admin_users(p_query, p_now),
                               'runs', app.admin_runs(20),
                               'inbox', billing.webhook_inbox('failed', 50),
                               'flash', app._take_flash(p_admin_id, p_token_hash, p_now))
$$;

-- app.page_admin_user(p_admin_id, p_token_hash, p_user_id, p_cursor, p_now)
--   -> {balance, user: app.me of the user (null when unknown), emailVerifiedAt, ledger:
--      credits.transactions page of 50 from p_cursor, flash: the session's message or null}.
-- Effects: takes the session's message (app._take_flash); reads otherwise.
create function app.page_admin_user(p_admin_id uuid, p_token_hash bytea, p_user_id uuid,
                                    p_cursor bigint default null,
                                    p_now timestamptz default now()) returns jsonb
language sql
as $$
  select app.page_nav(p_admin_id, p_now)
         || jsonb_build_object('user', app.me(p_user_id, p_now),
                               'emailVerifiedAt', (select app.iso(u.email_verified_at)
                                                     from app.users u where u.id = p_user_id),
                               'ledger', case when exists (select 1 from app.users
                                                            where id = p_user_id)
                                              then credits.transactions(p_user_id, 50, p_cursor)
                                         end,
                               'flash', app._take_flash(p_admin_id, p_token_hash, p_now))
$$;

-- credits.adjust_down(p_user_id, p_amount, p_key, p_reason, p_now)
-- Effects: credits._spend with ledger kind 'adjustment' and the reason as its description: the
--   user's due expiries at p_now are recorded, then p_amount credits leave the spendable grants
--   in the order consumption spends them.
-- Returns: the balance after. Idempotency key: (p_user_id, 'adjustment', p_key); a repeat returns
--   the first call's balance-after and changes nothing.
-- Errors: 22023 for a non-positive amount, an empty key or reason; 23503 for an unknown user;
--   CR001 when the balance is short (nothing is recorded: a balance never goes negative).
-- Locks: as credits._spend.
create function credits.adjust_down(p_user_id uuid, p_amount bigint, p_key text, p_reason text,
                                    p_now timestamptz default now()) returns bigint
language plpgsql
as $$
begin
  if coalesce(trim(p_reason), '') = '' then
    perform credits.raise_invalid('an adjustment needs a reason');
  end if;
  return credits._spend(p_user_id, p_amount, 'adjustment', p_key, trim(p_reason), p_now);
end
$$;

-- app.admin_adjust(p_user_id, p_amount, p_reason, p_key, p_now)
-- Effects: an admin's credit adjustment with a required reason: a positive p_amount is a
--   credits.grant of kind 'adjustment' (source key adjustment:<p_key>, never expires), a
--   negative one a credits.adjust_down. Either way the ledger gets one 'adjustment' entry whose
--   description is the reason.
-- Returns: the user's balance after. Idempotency key: p_key (the form's own key), one for both
--   directions, so a form sent twice adjusts once and answers the first balance-after; sent
--   again with another amount (or sign) it raises CR002 and changes nothing.
-- Errors: 22023 for a zero amount or an empty reason or key; 23503 for an unknown user; CR001
--   when a negative adjustment exceeds the balance; CR002 for a key used with another amount.
-- Locks: the batch advisory lock (shared), then the user's balance row, held while the key is
--   looked up and used (as credits.grant, whose locks it takes first, then adjust_down's).
create function app.admin_adjust(p_user_id uuid, p_amount bigint, p_reason text, p_key text,
                                 p_now timestamptz default now()) returns bigint
language plpgsql
as $$
declare
  v_first bigint;
  v_first_after bigint;
begin
  if coalesce(trim(p_reason), '') = '' then
    perform credits.raise_invalid('an adjustment needs a reason');
  end if;
  if coalesce(p_key, '') = '' then
    perform credits.raise_invalid('an idempotency key is required');
  end if;
  if p_amount is null or p_amount = 0 then
    perform credits.raise_invalid('the adjustment must not be zero');
  end if;
  perform credits.lock_batch_shared();
  perform 1 from credits.balances where user_id = p_user_id for update;
  if not found then
    perform credits.raise_unknown_user(p_user_id);
  end if;
  -- The key's first use, either way: the entry of the grant it made, or of the credits it took.
  select l.amount, l.balance_after into v_first, v_first_after
    from credits.grants g
    join credits.ledger l on l.user_id = g.user_id and l.grant_id = g.id and l.kind = 'adjustment'
   where g.source_key = credits.adjustment_key(p_key) and g.user_id = p_user_id;
  if v_first is null then
    select l.amount, l.balance_after into v_first, v_first_after
      from credits.ledger l
     where l.user_id = p_user_id and l.kind = 'adjustment' and l.idempotency_key = p_key;
  end if;
  if v_first is not null then
    if v_first <> p_amount then
      perform credits.raise_key_reused(p_key, v_first, p_amount);
    end if;
    return v_first_after;
  end if;
  if p_amount > 0 then
    perform credits.grant(p_user_id, p_amount, 'adjustment', credits.adjustment_key(p_key), null,
                          trim(p_reason));
    return credits.balance(p_user_id, p_now);
  end if;
  return credits.adjust_down(p_user_id, -p_amount, p_key, p_reason, p_now);
end
$$;

-- The admin pages' forms: each is the action and the message the page shows next
-- (app._set_flash), in one transaction, so a refused action leaves no message.

-- app.admin_form_adjust(p_admin_id, p_token_hash, p_user_id, p_amount, p_reason, p_key, p_now)
-- app.admin_adjust, then the message {kind: 'adjusted', amount, balance}. Returns the balance
-- after. Errors, idempotency and locks as app.admin_adjust, then the message row.
create function app.admin_form_adjust(p_admin_id uuid, p_token_hash bytea, p_user_id uuid,
                                      p_amount bigint, p_reason text, p_key text,
                                      p_now timestamptz default now()) returns bigint
language plpgsql
as $$
declare
  v_balance bigint := app.admin_adjust(p_user_id, p_amount, p_reason, p_key, p_now);
begin
  perform app._set_flash(p_admin_id, p_token_hash,
                         jsonb_build_object('kind', 'adjusted', 'amount', p_amount,
                                            'balance', v_balance), p_now);
  return v_balance;
end
$$;

-- app.admin_form_run_daily(p_admin_id, p_token_hash, p_now)
-- credits.run_daily_counts (trigger 'admin'), then the message {kind: 'daily_run', expired,
-- granted, durationMs}. Returns that message. Locks as run_daily_counts, then the message row.
create function app.admin_form_run_daily(p_admin_id uuid, p_token_hash bytea,
                                         p_now timestamptz default now()) returns jsonb
language plpgsql
as $$
declare
  v_flash jsonb;
begin
  select jsonb_build_object('kind', 'daily_run', 'expired', r.expired, 'granted', r.granted,
                            'durationMs', r.duration_ms) into v_flash
    from credits.run_daily_counts(p_now, 'admin') r;
  perform app._set_flash(p_admin_id, p_token_hash, v_flash, p_now);
  return v_flash;
end
$$;

-- app.admin_form_replay(p_admin_id, p_token_hash, p_provider, p_event_id, p_now)
-- billing.replay_event, then the message {kind: 'replayed', eventId, result}. Returns the result.
-- Errors and locks as billing.replay_event, then the message row.
create function app.admin_form_replay(p_admin_id uuid, p_token_hash bytea, p_provider text,
                                      p_event_id text, p_now timestamptz default now())
returns text
language plpgsql
as $$
declare
  v_result text := billing.replay_event(p_provider, p_event_id, p_now);
begin
  perform app._set_flash(p_admin_id, p_token_hash,
                         jsonb_build_object('kind', 'replayed', 'eventId', p_event_id,
                                            'result', v_result), p_now);
  return v_result;
end
$$;
