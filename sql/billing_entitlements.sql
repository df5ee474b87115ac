-- Entitlements: which users are on a paid plan at a moment. The one definition that monthly
-- distribution, /api/me and the payments code all read.
-- "Reads only" in a contract below means: no effects, so no idempotency key; no locks (it reads
-- committed rows under its statement's snapshot); no errors unless it names some.

-- billing.paid_plans(p_now)
-- Returns one row per paid entitlement in force at p_now: an active, trialing or past-due
-- subscription whose current period has not ended, or a lifetime purchase that has been neither
-- refunded (in part or in full) nor disputed. A user may have several; paid_plan_of() picks one for display.
-- Reads only. SQL so that the planner inlines it into the set-based callers.
create function billing.paid_plans(p_now timestamptz)
returns table (user_id uuid, plan_id text, source text, source_id bigint, renews_at timestamptz,
               status text)
language sql stable
as $$
  select s.user_id, s.plan_id, 'subscription', s.id,
         case when s.cancel_at_period_end then null else s.current_period_end end, s.status
    from billing.subscriptions s
   where s.status in ('active', 'trialing', 'past_due')
     and s.current_period_end > p_now
  union all
  select p.user_id, pr.plan_id, 'lifetime', p.id, null, 'active'
    from billing.payments p
    join billing.prices pr on pr.price_id = p.price_id
   where p.kind = 'lifetime' and p.refunded_amount = 0 and p.disputed_at is null
     and p.paid_at <= p_now
$$;

-- billing.plan_of(p_user_id, p_now)
-- Returns the plan a user is on at p_now: the paid entitlement with the most monthly credits
-- (lifetime before subscriptions on ties), else the free plan with status 'active'.
create function billing.plan_of(p_user_id uuid, p_now timestamptz default now())
returns table (plan_id text, kind text, status text, renews_at timestamptz)
language sql stable
as $$
  select x.plan_id, pl.kind, x.status, x.renews_at
    from (
      select pp.plan_id, pp.status, pp.renews_at, pp.source
        from billing.paid_plans(p_now) pp
       where pp.user_id = p_user_id
      union all
      select f.id, 'active', credits.add_months_utc(date_trunc('month', p_now, 'UTC'), 1), 'free'
        from billing.plans f
       where f.kind = 'free' and f.active
    ) x
    join billing.plans pl on pl.id = x.plan_id
   order by (x.source = 'free'), pl.monthly_credits desc, (x.source = 'lifetime') desc
   limit 1
$$;
