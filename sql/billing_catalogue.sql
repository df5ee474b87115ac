-- The catalogue: plans, packages and prices, loaded from plans.json at start-up.

-- billing.load_plans(p_doc)
-- Inputs: the plans file as JSON, already validated by the app (utils/plans.ts); the checks
--   that need the database (a price ID used twice, one free plan) are repeated here.
-- Effects: upserts settings (with lowBalanceCredits), plans, packages, prices and features; marks
--   inactive every plan, package, price or feature that the file no longer lists (never deletes:
--   payments and subscriptions refer to them).
-- Idempotent: loading the same file twice changes nothing but loaded_at.
-- Locks: an exclusive transaction advisory lock, so concurrent start-ups load one at a time.
create function billing.load_plans(p_doc jsonb) returns void
language plpgsql
as $$
begin
  perform billing.lock_catalogue();

  if (select count(*) from jsonb_array_elements(p_doc -> 'plans') p where p ->> 'kind' = 'free') <> 1 then
    raise exception using errcode = '22023', message = 'plans: exactly one plan must have kind "free"';
  end if;

  insert into billing.settings as s (singleton, currency, signup_gift_credits, signup_gift_days,
                                     daily_signin_credits, daily_signin_days,
                                     low_balance_credits, loaded_at)
  values (true, lower(p_doc ->> 'currency'),
          coalesce((p_doc #>> '{signupGift,credits}')::bigint, 0),
          (p_doc #>> '{signupGift,expiresInDays}')::integer,
          coalesce((p_doc #>> '{dailySignin,credits}')::bigint, 0),
          (p_doc #>> '{dailySignin,expiresInDays}')::integer,
          (p_doc ->> 'lowBalanceCredits')::bigint,
          now())
  on conflict (singleton) do update
     set currency = excluded.currency,
         signup_gift_credits = excluded.signup_gift_credits,
         signup_gift_days = excluded.signup_gift_days,
         daily_signin_credits = excluded.daily_signin_credits,
         daily_signin_days = excluded.daily_signin_days,
         low_balance_credits = excluded.low_balance_credits,
         loaded_at = excluded.loaded_at;

  -- Retire first, so that the file's single free plan can take the partial unique index.
  update billing.prices set active = false
   where active and price_id not in (
     select x ->> 'priceId'
       from jsonb_array_elements(p_doc -> 'plans') p,
            jsonb_array_elements(coalesce(p -> 'prices', '[]')) x
     union all
     select x ->> 'priceId'
       from jsonb_array_elements(coalesce(p_doc -> 'packages', '[]')) k,
            jsonb_array_elements(k -> 'prices') x);
  update billing.plans set active = false
   where active and id not in (select p ->> 'id' from jsonb_array_elements(p_doc -> 'plans') p);
  update billing.packages set active = false
   where active and id not in (
     select k ->> 'id' from jsonb_array_elements(coalesce(p_doc -> 'packages', '[]')) k);
  update billing.features set active = false
   where active and id not in (
     select f ->> 'id' from jsonb_array_elements(coalesce(p_doc -> 'features', '[]')) f);
  -- A plan that changes kind to free must not collide with the old free plan while both update.
  update billing.plans set active = false
   where active and kind = 'free'
     and id <> (select p ->> 'id' from jsonb_array_elements(p_doc -> 'plans') p
                 where p ->> 'kind' = 'free');

  insert into billing.plans as t (id, name, kind, monthly_credits, credits_expire_days,
                                  trial_credits, position, active)
  select p ->> 'id', p ->> 'name', p ->> 'kind', (p ->> 'monthlyCredits')::bigint,
         (p ->> 'creditsExpireInDays')::integer, (p ->> 'trialCredits')::bigint, n, true
    from jsonb_array_elements(p_doc -> 'plans') with ordinality as e (p, n)
  on conflict (id) do update
     set name = excluded.name, kind = excluded.kind, monthly_credits = excluded.monthly_credits,
         credits_expire_days = excluded.credits_expire_days,
         trial_credits = excluded.trial_credits, position = excluded.position, active = true;

  insert into billing.packages as t (id, name, credits, expires_days, position, active)
  select k ->> 'id', k ->> 'name', (k ->> 'credits')::bigint, (k ->> 'expiresInDays')::integer,
         n, true
    from jsonb_array_elements(coalesce(p_doc -> 'packages', '[]')) with ordinality as e (k, n)
  on conflict (id) do update
     set name = excluded.name, credits = excluded.credits, expires_days = excluded.expires_days,
         position = excluded.position, active = true;

  insert into billing.features as t (id, name, credits, position, active)
  select f ->> 'id', f ->> 'name', (f ->> 'credits')::bigint, n, true
    from jsonb_array_elements(coalesce(p_doc -> 'features', '[]')) with ordinality as e (f, n)
  on conflict (id) do update
     set name = excluded.name, credits = excluded.credits, position = excluded.position,
         active = true;

  insert into billing.prices as t (price_id, provider, plan_id, package_id, interval, amount,
                                   currency, active)
  select x ->> 'priceId', x ->> 'provider', p ->> 'id', null, x ->> 'interval',
         (x ->> 'amount')::bigint, lower(p_doc ->> 'currency'), true
    from jsonb_array_elements(p_doc -> 'plans') p,
         jsonb_array_elements(coalesce(p -> 'prices', '[]')) x
  union all
  select x ->> 'priceId', x ->> 'provider', null, k ->> 'id', 'once',
         (x ->> 'amount')::bigint, lower(p_doc ->> 'currency'), true
    from jsonb_array_elements(coalesce(p_doc -> 'packages', '[]')) k,
         jsonb_array_elements(k -> 'prices') x
  on conflict (price_id) do update
     set provider = excluded.provider, plan_id = excluded.plan_id,
         package_id = excluded.package_id, interval = excluded.interval,
         amount = excluded.amount, currency = excluded.currency, active = true;
end
$$;

-- billing.catalogue()
-- Returns the active plans and packages with their active prices, as the pricing page shows them.
-- Effects none (reads only, so no idempotency key). Errors none. Locks none.
create function billing.catalogue() returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'currency', (select currency from billing.settings),
    'plans', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', p.id, 'name', p.name, 'kind', p.kind, 'monthlyCredits', p.monthly_credits,
               'creditsExpireInDays', p.credits_expire_days, 'trialCredits', p.trial_credits,
               'prices', coalesce((
                 select jsonb_agg(jsonb_build_object('provider', x.provider, 'priceId', x.price_id,
                                                     'interval', x.interval, 'amount', x.amount)
                                  order by x.amount)
                   from billing.prices x where x.plan_id = p.id and x.active), '[]'))
             order by p.position)
        from billing.plans p where p.active), '[]'),
    'packages', coalesce((
      select jsonb_agg(jsonb_build_object(
               'id', k.id, 'name', k.name, 'credits', k.credits, 'expiresInDays', k.expires_days,
               'prices', coalesce((
                 select jsonb_agg(jsonb_build_object('provider', x.provider, 'priceId', x.price_id,
                                                     'interval', x.interval, 'amount', x.amount)
                                  order by x.amount)
                   from billing.prices x where x.package_id = k.id and x.active), '[]'))
             order by k.position)
        from billing.packages k where k.active), '[]'))
$$;
