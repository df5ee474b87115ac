-- Monthly distribution and the daily run.
-- "Reads only" in a contract below means: no effects, so no idempotency key; no locks (it reads
-- committed rows under its statement's snapshot); no errors unless it names some.

-- How many past lifetime slots a run may still pay out when earlier runs were missed. A constant.
create function credits.lifetime_catch_up_slots() returns integer
language sql immutable parallel safe
as $$ select 12 $$;

-- credits.due_monthly_grants(p_now)
-- Returns the recurring grants that are due at p_now, whether or not already made:
--   free_monthly      the free plan's monthlyCredits for p_now's UTC month, to every user
--                     without a paid plan at p_now;
--   subscription_monthly  a yearly subscription's slot k (k = 0..11, starting k months after
--                     the period start, UTC) for every slot that has started within the paid
--                     period; only while the subscription is 'active': a trialing period is not
--                     a paid year (trialCredits cover it), nor is a past-due one until it is paid
--                     (then the started slots catch up). A slot is worth the monthlyCredits
--                     of the richest plan paid for in the year: the year's payment's, or one
--                     whose upgrade payment (grant key billing.upgrade_key) is neither disputed
--                     nor refunded in full; the row's plan only when no payment of the year is
--                     recorded. After refunds totalling R of
--                     the year's payment P (the payment whose grant key is
--                     credits.yearly_period_key), a slot adds round(monthlyCredits × (P − R) ÷
--                     P), nothing when that is 0; a disputed year, or one refunded in full,
--                     adds no slot;
--   lifetime_monthly  a lifetime purchase's slot k (k months after the purchase) for the slots
--                     that have started, the last lifetime_catch_up_slots() of them, while the
--                     purchase is neither refunded (in part or in full) nor disputed.
-- amount is what the grant adds to the balance; worth is the slot's monthlyCredits, and when a
-- refund of the year's payment made amount smaller, reference names that refund (the key
-- billing._apply_refund gives its ledger entries): the slot is then a grant of worth with the
-- refund's share taken at once, so that a later refund of the year takes only the further share.
-- Credits come from the plans tables; expiry is p_now + the plan's creditsExpireInDays.
-- Reads only.
create function credits.due_monthly_grants(p_now timestamptz)
returns table (user_id uuid, kind text, amount bigint, expires_at timestamptz, source_key text,
               worth bigint, reference text)
language sql stable
as $$
  select b.user_id, 'free_monthly', f.monthly_credits,
         credits.add_days_utc(p_now, f.credits_expire_days),
         credits.free_monthly_key(b.user_id, p_now), f.monthly_credits, null::text
    from credits.balances b
   cross join billing.plans f
   where f.kind = 'free' and f.active and f.monthly_credits > 0
     and not exists (select 1 from billing.paid_plans(p_now) pp where pp.user_id = b.user_id)
  union all
  select s.user_id, 'subscription_monthly', y.amount,
         credits.add_days_utc(p_now, pl.credits_expire_days),
         credits.yearly_slot_key(s.id, s.current_period_start, k.slot), pl.monthly_credits,
         case when y.amount < pl.monthly_credits
              then billing.refund_reference(p.id, p.refunded_amount) end
    from billing.subscriptions s
    left join billing.payments p
      on p.user_id = s.user_id and p.subscription_id = s.id and p.kind = 'subscription'
     and p.period_start = s.current_period_start
     and p.grant_key = credits.yearly_period_key(s.id, s.current_period_start)
   cross join lateral (
     select x.monthly_credits, x.credits_expire_days
       from billing.plans x
      where (p.id is null and x.id = s.plan_id)
         or x.id = (select pr.plan_id from billing.prices pr where pr.price_id = p.price_id)
         or (p.id is not null and exists (
               select from billing.payments u
                where u.user_id = s.user_id
                  and u.grant_key = billing.upgrade_key(s.id, s.current_period_start, x.id)
                  and u.disputed_at is null and u.refunded_amount < u.amount))
      order by x.monthly_credits desc
      limit 1
   ) pl
   cross join lateral (
     select case when p.refunded_amount > 0
                 then round(pl.monthly_credits::numeric * (p.amount - p.refunded_amount)
                            / p.amount)::bigint
                 else pl.monthly_credits end as amount
   ) y
   cross join lateral generate_series(
           0, least(11, credits.months_between_utc(s.current_period_start, p_now))) as k (slot)
   where s.interval = 'year' and s.status = 'active'
     and s.current_period_start <= p_now and s.current_period_end > p_now
     and y.amount > 0 and p.disputed_at is null
     and (p.id is null or p.refunded_amount < p.amount)
     and credits.add_months_utc(s.current_period_start, k.slot) <= p_now
     and credits.add_months_utc(s.current_period_start, k.slot) < s.current_period_end
  union all
  select p.user_id, 'lifetime_monthly', pl.monthly_credits,
         credits.add_days_utc(p_now, pl.credits_expire_days),
         credits.lifetime_slot_key(p.id, k.slot), pl.monthly_credits, null::text
    from billing.payments p
    join billing.prices pr on pr.price_id = p.price_id
    join billing.plans pl on pl.id = pr.plan_id
   cross join lateral generate_series(
           greatest(0, credits.months_between_utc(p.paid_at, p_now)
                       - credits.lifetime_catch_up_slots() + 1),
           credits.months_between_utc(p.paid_at, p_now)) as k (slot)
   where p.kind = 'lifetime' and p.refunded_amount = 0 and p.disputed_at is null
     and p.paid_at <= p_now and pl.monthly_credits > 0
     and credits.add_months_utc(p.paid_at, k.slot) <= p_now
$$;

-- credits.distribute_monthly(p_now)
-- Effects: makes every grant of due_monthly_grants(p_now) that has not been made yet, for every
--   user in one transaction (credits._make_due_grants). The daily run does the same in batches
--   (credits._daily_batch, sql/credits_daily_run.sql); this whole-table form is for tests, tools
--   and small installations.
-- Returns: how many grants it made. Idempotency key: each grant's source key (a repeated or
--   concurrent run finds them taken and makes nothing).
-- Locks: the batch advisory lock exclusively (no grant and no daily batch runs meanwhile), then
--   (by the insert) the new grants, then (by one update) the balance rows of the users granted
--   to. Expired-but-unrecorded grants of those users stay for their next grant, consumption or
--   expiry, as the contract allows.
-- The keys already taken are filtered out before the insert rather than by ON CONFLICT, which
--   would write a speculative insertion per grant. Safe because every other way of making a grant
--   (credits.grant_once, a daily batch) holds the batch lock in shared mode, so no key can be
--   inserted between the filter and the insert; one that did would fail the run, never grant
--   twice.
create function credits.distribute_monthly(p_now timestamptz default now()) returns integer
language plpgsql
set work_mem = '256MB'
as $$
declare
  v_ids regclass := pg_get_serial_sequence('credits.grants', 'id')::regclass;
  v_count integer;
begin
  perform credits.lock_batch();
  drop table if exists pg_temp.distribution_due; -- a second run in one transaction
  create temp table distribution_due on commit drop as
  select d.user_id, nextval(v_ids) as id, d.kind, d.amount, d.expires_at, d.source_key, d.worth,
         d.reference
    from credits.due_monthly_grants(p_now) d
   where not exists (select from credits.grants g where g.source_key = d.source_key);
  get diagnostics v_count = row_count;
  if v_count = 0 then
    return 0;
  end if;
  perform credits._make_due_grants(p_now);
  return v_count;
end
$$;

-- credits._make_due_grants(p_now)
-- Inputs: pg_temp.distribution_due (user_id, id drawn from the grants' sequence, kind, amount,
--   expires_at, source_key, worth, reference): grants due at p_now whose keys are not taken,
--   filled by the caller (distribute_monthly, credits._daily_batch) under the locks it names.
-- Effects: inserts the grants, raises each user's balance once by their sum, and appends one
--   ledger entry per grant (balance_after running in grant id order), plus, for a slot of a partly
--   refunded year, the refund entry of the share it gives up at once (see due_monthly_grants).
--   Three statements for all its rows. Returns nothing. Errors: 23505 if a key was taken after
--   all (the caller's locks say why it cannot be). Locks: the new grants, then the balance rows
--   (one update), on top of the caller's.
-- Cost, per grant: one heap row and four index entries in grants, one HOT update of the balance,
--   one ledger row and its primary-key entry. The due grants sit in a temporary table (no WAL)
--   with statistics, so the planner sees their real number, not a CTE's guess, and updates the
--   balances in one pass (hash join) instead of index probes in random order; grant ids are drawn
--   up front, so the ledger needs no join back to the inserted grants.
create function credits._make_due_grants(p_now timestamptz) returns void
language plpgsql
as $$
begin
  analyze pg_temp.distribution_due;

  insert into credits.grants (user_id, id, kind, amount, remaining, expires_at, source_key)
  overriding system value
  select user_id, id, kind, worth, amount, expires_at, source_key
    from pg_temp.distribution_due
   order by user_id, id;

  with per_user as (
    select user_id, sum(amount) as total from pg_temp.distribution_due group by user_id
  ), balance as (
    update credits.balances b
       set balance = b.balance + p.total, updated_at = now()
      from per_user p
     where b.user_id = p.user_id
    returning b.user_id, b.balance - p.total as balance_before
  ), entries as (
    -- One entry per grant, of its worth; a slot of a partly refunded year also gets the
    -- refund's entry for the share taken at once (step 1, right after its grant).
    select d.user_id, d.id, 0 as step, d.kind::text as kind, d.worth as amount,
           null::text as description, null::text as reference
      from pg_temp.distribution_due d
    union all
    select d.user_id, d.id, 1, 'refund', d.amount - d.worth, credits.kind_label('refund'),
           d.reference
      from pg_temp.distribution_due d
     where d.worth > d.amount
  )
  insert into credits.ledger (user_id, kind, amount, balance_after, created_at, grant_id,
                              description, reference)
  select e.user_id, e.kind, e.amount,
         b.balance_before
           + sum(e.amount) over (partition by e.user_id order by e.id, e.step), p_now, e.id,
         e.description, e.reference
    from entries e
    join balance b on b.user_id = e.user_id
   order by e.user_id, e.id, e.step;
end
$$;
