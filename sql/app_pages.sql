-- What the web pages read: one call per page. Every page function reads only, unless its
-- contract says otherwise (the admin pages take the session's message, sql/app_admin.sql).
-- "Reads only" in a contract below means: no effects, so no idempotency key; no locks (it reads
-- committed rows under its statement's snapshot); no errors unless it names some.

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

-- app.admin_users(p_query, p_now)
--   -> [{id, email, externalId, emailVerifiedAt, createdAt, balance, plan}]:
-- at most 50 users whose email or externalId contains p_query, case-insensitively (all when it is
-- empty), newest first. email is null for an API customer created without one. Reads only.
create function app.admin_users(p_query text, p_now timestamptz default now()) returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', u.id, 'email', u.email, 'externalId', u.external_id,
           'emailVerifiedAt', app.iso(u.email_verified_at),
           'createdAt', app.iso(u.created_at),
           'balance', credits.balance(u.id, p_now),
           'plan', (select p.plan_id from billing.plan_of(u.id, p_now) p))
         order by u.created_at desc, u.id), '[]')
    from (
      select * from app.users
       where coalesce(p_query, '') = ''
          or strpos(email, lower(trim(p_query))) > 0
          or strpos(lower(external_id), lower(trim(p_query))) > 0
       order by created_at desc, id
       limit 50
    ) u
$$;

-- app.admin_runs(p_limit) -> [{id, runAt, trigger, status, expired, granted, durationMs,
--   finishedAt, users, usersDone, batchesDone, failedBatches, failedUsers, errors, note,
--   resumedFrom, batchSize}]: the latest daily runs, newest first. status is the row's, except
--   that a 'running' row whose run no longer holds the daily-run lock (it died, and the next run
--   will continue it) reads 'interrupted'. Reads only.
create function app.admin_runs(p_limit integer default 20) returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', r.id, 'runAt', app.iso(r.run_at), 'trigger', r.trigger,
           'status', case when r.status = 'running' and not credits.daily_run_held()
                          then 'interrupted' else r.status end,
           'expired', r.expired, 'granted', r.granted, 'durationMs', r.duration_ms,
           'finishedAt', app.iso(r.finished_at), 'users', r.users, 'usersDone', r.users_done,
           'batchesDone', r.batches_done, 'failedBatches', r.failed_batches,
           'failedUsers', r.failed_users, 'errors', r.errors, 'note', r.note,
           'resumedFrom', r.resumed_from, 'batchSize', r.batch_size) order by r.id desc), '[]')
    from (select * from credits.daily_runs order by id desc limit p_limit) r
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
--   -> {balance, user: app.me of the user (null when unknown), externalId, emailVerifiedAt,
--      ledger: credits.transactions page of 50 from p_cursor, flash: the session's message or
--      null}.
-- Effects: takes the session's message (app._take_flash); reads otherwise.
create function app.page_admin_user(p_admin_id uuid, p_token_hash bytea, p_user_id uuid,
                                    p_cursor bigint default null,
                                    p_now timestamptz default now()) returns jsonb
language sql
as $$
  select app.page_nav(p_admin_id, p_now)
         || jsonb_build_object('user', app.me(p_user_id, p_now),
                               'externalId', (select u.external_id
                                                from app.users u where u.id = p_user_id),
                               'emailVerifiedAt', (select app.iso(u.email_verified_at)
                                                     from app.users u where u.id = p_user_id),
                               'ledger', case when exists (select 1 from app.users
                                                            where id = p_user_id)
                                              then credits.transactions(p_user_id, 50, p_cursor)
                                         end,
                               'flash', app._take_flash(p_admin_id, p_token_hash, p_now))
$$;
