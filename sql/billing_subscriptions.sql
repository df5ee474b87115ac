-- Subscriptions: the handlers of a subscription's payments (periods, upgrades) and of its
-- changes. Handlers' shared contract and lock order: sql/billing_events.sql.

-- billing._period_grants(p_user_id, p_subscription_id, p_period_start, p_base_key)
-- Returns what a subscription's period has granted so far, by key lookups only (one probe of the
-- grants' unique source key per plan, no scan, however many grants the user has): granted, the credits of the period grant
-- (p_base_key: the monthly period's key, or a yearly period's slot 0) and of its upgrade grants
-- (billing.upgrade_key per plan) together; base, the period grant's credits (null when not made
-- yet); richest, the most monthlyCredits of a plan paid for in the period as far as its grants
-- show (the period grant's credits, the plans of its upgrade grants).
-- plpgsql so that its plan is kept for the session. Reads only.
create function billing._period_grants(p_user_id uuid, p_subscription_id bigint,
                                       p_period_start timestamptz, p_base_key text,
                                       out granted bigint, out base bigint, out richest bigint)
language plpgsql stable
as $$
begin
  -- Each key is looked up by a subquery of its own: joined to the grants, the keys could be
  -- matched by reading the user's grants (or all grants), a number that grows every month.
  select coalesce(sum(k.amount), 0), max(k.amount) filter (where k.plan_id is null),
         coalesce(max(coalesce(k.credits, k.amount)) filter (where k.amount is not null), 0)
    into granted, base, richest
    from (select keys.plan_id, keys.credits,
                 (select g.amount from credits.grants g
                   where g.source_key = keys.source_key and g.user_id = p_user_id) as amount
            from (select null::text as plan_id, null::bigint as credits,
                         p_base_key as source_key
                  union all
                  select pl.id, pl.monthly_credits,
                         billing.upgrade_key(p_subscription_id, p_period_start, pl.id)
                    from billing.plans pl
                   where pl.kind = 'subscription') keys) k;
end
$$;

-- period_paid: a subscription payment. Two sorts:
--   * a period's invoice (grantsPeriod: a first or renewal invoice with money paid): records the
--     subscription (advancing its period when this one is newer) and the payment, and grants the
--     period: a monthly price's monthlyCredits keyed by (subscription, period start), a yearly
--     price's slot 0 keyed like the daily job's slots (the daily job makes slots 1-11);
--   * an upgrade's payment, the prorated charge of a move to another plan within the period.
--     Recognised by paysUpgrade (Stripe: an invoice with billing_reason subscription_update, its
--     price the charged proration line's and fromPriceId the credited one's; Creem: a
--     subscription.paid whose transaction starts after the period does), or, for an event
--     without it, by its period already holding a period grant of other credits than its plan's
--     (Creem may report an upgrade's charge as one more subscription.paid of the period). It
--     touches neither the subscription's plan (subscription_changed keeps that) nor its period:
--     it belongs to the recorded period that contains periodStart (Stripe: the moment of the
--     change), and fails (BL001) while no such period is recorded: it is retried when an event
--     of the subscription is applied. An upgrade payment reported after its subscription moved
--     to a later period stays failed for an admin.
--   Credits, within one (subscription, period): the period's subscription grants never add up to
--   more than the richest plan paid for in it (docs/credit-rules.md). An upgrade to plan X from
--   plan O grants least(X − O, richest − granted), where granted counts the period grant as O
--   when the period's invoice has not been applied yet (it will grant O when it comes, so an
--   upgrade reported first ends as in order); O is fromPriceId's plan, else the period grant's
--   credits, else 0. The period's invoice grants least(B, richest − granted) for its plan B (B
--   unless upgrades were granted first without knowing O). A downgrade's payment (X ≤ O) grants
--   nothing: the next period's invoice pays the new plan.
-- Keys: billing.period_key or credits.yearly_slot_key(…, 0); an upgrade's
--   billing.upgrade_key(subscription, period start, X), also the upgrade payment's grant key (a
--   refund of it takes from that grant). Payments: billing._record_payment.
-- Errors: BL001 for no matching user, a price that is not a subscription price, an empty
--   period, an upgrade payment whose period is not recorded.
-- Locks: the subscription's reference lock (billing._run), the subscription row when the
--   invoice's upsert writes it, then through credits.grant_once the batch lock (shared) and the
--   user's balance row.
create function billing._apply_period_paid(p_provider billing.provider,
                                           p_event jsonb, p_now timestamptz)
returns uuid
language plpgsql
as $$
declare
  v_user uuid := billing._user_of(p_provider, p_event -> 'customer', p_event ->> 'subscriptionRef');
  v_price record;
  v_sub record;
  v_start timestamptz := (p_event ->> 'periodStart')::timestamptz;
  v_end timestamptz := (p_event ->> 'periodEnd')::timestamptz;
  v_upgrade boolean := coalesce((p_event ->> 'paysUpgrade')::boolean, false);
  v_from_price text := p_event ->> 'fromPriceId';
  v_interval text;
  v_grants boolean;
  v_base_key text;
  v_grant_key text;
  v_level record;
  v_from_credits bigint;
  v_amount bigint;
begin
  select * into v_price from billing._price(p_provider, p_event ->> 'priceId', true);
  if v_end <= v_start then
    perform billing.raise_failure('the paid period ends before it starts');
  end if;

  if v_upgrade then
    select s.id, s.user_id, s.plan_id, s.status, s.current_period_start, s.interval into v_sub
      from billing.subscriptions s
     where s.provider = p_provider and s.provider_ref = p_event ->> 'subscriptionRef'
       and s.current_period_start <= v_start and v_start < s.current_period_end;
    if not found then
      perform billing.raise_failure(format(
        'upgrade payment %s: no recorded period of subscription %s contains %s (yet)',
        p_event ->> 'paymentRef', p_event ->> 'subscriptionRef', p_event ->> 'periodStart'));
    end if;
    v_start := v_sub.current_period_start;
  else
    insert into billing.subscriptions as s (user_id, provider, provider_ref, plan_id, price_id,
                                            interval, status, current_period_start,
                                            current_period_end)
    values (v_user, p_provider, p_event ->> 'subscriptionRef', v_price.plan_id, v_price.price_id,
            v_price.price_interval, 'active', v_start, v_end)
    on conflict (provider, provider_ref) do update
       set plan_id = excluded.plan_id, price_id = excluded.price_id, interval = excluded.interval,
           status = 'active', current_period_start = excluded.current_period_start,
           current_period_end = excluded.current_period_end, updated_at = now()
     where s.current_period_start < excluded.current_period_start
    returning s.id, s.user_id, s.plan_id, s.status, s.current_period_start, s.interval into v_sub;
    if v_sub.id is null then
      -- The row exists with this period or a newer one: it stays as it is.
      select s.id, s.user_id, s.plan_id, s.status, s.current_period_start, s.interval into v_sub
        from billing.subscriptions s
       where s.provider = p_provider and s.provider_ref = p_event ->> 'subscriptionRef';
    end if;
  end if;

  -- The key of the period grant: a monthly period's own key, or a yearly period's slot 0. An
  -- upgrade's period has the subscription's interval (it may be paid at another price).
  v_interval := case when v_upgrade then v_sub.interval else v_price.price_interval end;
  v_base_key := case when v_interval = 'month' then billing.period_key(v_sub.id, v_start)
                     else credits.yearly_slot_key(v_sub.id, v_start, 0) end;
  select * into v_level from billing._period_grants(v_sub.user_id, v_sub.id, v_start, v_base_key);
  -- A period already granted on a plan with other credits: this payment is its upgrade's.
  v_upgrade := v_upgrade or ((p_event ->> 'grantsPeriod')::boolean
                             and v_level.base is distinct from v_price.monthly_credits
                             and v_level.base is not null);

  v_grants := v_price.monthly_credits > 0 and case
    when v_upgrade then coalesce((p_event ->> 'amount')::bigint, 0) > 0
    else (p_event ->> 'grantsPeriod')::boolean end;
  -- The key the payment's grants live under: the upgrade's grant, a monthly period's grant, or
  -- the prefix of a yearly period's month slots (the daily job adds the later slots under it).
  v_grant_key := case when not v_grants then null
                      when v_upgrade then billing.upgrade_key(v_sub.id, v_start, v_price.plan_id)
                      when v_interval = 'month' then v_base_key
                      else credits.yearly_period_key(v_sub.id, v_start)
                 end;
  perform billing._record_payment(
    p_provider => p_provider, p_user_id => v_sub.user_id, p_event => p_event,
    p_price_id => v_price.price_id, p_kind => 'subscription', p_subscription_id => v_sub.id,
    p_period_start => v_start, p_grant_key => v_grant_key);
  if not v_grants then
    return v_sub.user_id;
  end if;

  if v_upgrade then
    select pl.monthly_credits into v_from_credits
      from billing.prices pr join billing.plans pl on pl.id = pr.plan_id
     where pr.price_id = v_from_price;
    v_from_credits := coalesce(v_from_credits, v_level.base, 0);
    v_amount := least(v_price.monthly_credits - v_from_credits,
                      greatest(v_price.monthly_credits, v_level.richest) - v_level.granted
                      - case when v_level.base is null then v_from_credits else 0 end);
    if v_amount > 0 then
      perform credits.grant_once(p_user_id => v_sub.user_id, p_amount => v_amount,
                                 p_kind => 'upgrade', p_source_key => v_grant_key,
                                 p_expires_at => billing._expiry(p_now, v_price.plan_expire_days),
                                 p_description => 'Plan upgrade to ' || v_price.plan_id);
    end if;
    return v_sub.user_id;
  end if;
  v_amount := case when v_level.base is not null then 0
                   else least(v_price.monthly_credits,
                              greatest(v_price.monthly_credits, v_level.richest) - v_level.granted)
              end;
  if v_amount > 0 then
    perform credits.grant_once(
              p_user_id => v_sub.user_id, p_amount => v_amount,
              p_kind => case when v_interval = 'month' then 'subscription_period'
                             else 'subscription_monthly' end,
              p_source_key => v_base_key,
              p_expires_at => billing._expiry(p_now, v_price.plan_expire_days),
              p_description => case when v_interval = 'month' then 'Subscription credits'
                                    else 'Yearly plan monthly credits' end);
  end if;
  return v_sub.user_id;
end
$$;

-- subscription_changed: Tally's copy of the subscription. An event applies only when it is not
--   older than what the row holds: (period start, event time) compared as a pair, so a late
--   event about an earlier period or an earlier moment changes nothing. Grants trialCredits once
--   per subscription when it is trialing. A move to another plan only changes the plan: an
--   upgrade's credits come with its payment (period_paid), a downgrade's next invoice pays less.
-- Idempotency: the subscription row, keyed by (provider, subscription ID), which an older or
--   repeated event leaves as it is; the trial grant's key billing.trial_key(subscription).
-- Errors: BL001 for no matching user, a price that is not a subscription price, an empty period.
-- Locks: the subscription's reference lock (billing._run), the subscription row, then through
--   credits.grant_once the batch lock (shared) and the user's balance row.
create function billing._apply_subscription_changed(p_provider billing.provider, p_event jsonb,
                                                    p_now timestamptz)
returns uuid
language plpgsql
as $$
declare
  v_user uuid := billing._user_of(p_provider, p_event -> 'customer', p_event ->> 'subscriptionRef');
  v_price record;
  v_old record;
  v_sub_id bigint;
  v_start timestamptz := (p_event ->> 'periodStart')::timestamptz;
  v_end timestamptz := (p_event ->> 'periodEnd')::timestamptz;
  v_at timestamptz := (p_event ->> 'occurredAt')::timestamptz;
  v_status text := p_event ->> 'status';
begin
  select * into v_price from billing._price(p_provider, p_event ->> 'priceId', true);
  if v_end <= v_start then
    perform billing.raise_failure('the subscription period ends before it starts');
  end if;

  select s.id, s.user_id, s.plan_id, s.current_period_start, s.last_event_at into v_old
    from billing.subscriptions s
   where s.provider = p_provider and s.provider_ref = p_event ->> 'subscriptionRef'
     for update;
  if not found then
    insert into billing.subscriptions (user_id, provider, provider_ref, plan_id, price_id,
                                       interval, status, current_period_start, current_period_end,
                                       cancel_at_period_end, canceled_at, last_event_at)
    values (v_user, p_provider, p_event ->> 'subscriptionRef', v_price.plan_id, v_price.price_id,
            v_price.price_interval, v_status, v_start, v_end,
            coalesce((p_event ->> 'cancelAtPeriodEnd')::boolean, false),
            (p_event ->> 'canceledAt')::timestamptz, v_at)
    returning id into v_sub_id;
  else
    v_sub_id := v_old.id;
    v_user := v_old.user_id;
    if (v_start, v_at) >= (v_old.current_period_start, coalesce(v_old.last_event_at, '-infinity')) then
      update billing.subscriptions
         set plan_id = v_price.plan_id, price_id = v_price.price_id, interval = v_price.price_interval,
             status = v_status, current_period_start = v_start, current_period_end = v_end,
             cancel_at_period_end = coalesce((p_event ->> 'cancelAtPeriodEnd')::boolean, false),
             canceled_at = (p_event ->> 'canceledAt')::timestamptz, last_event_at = v_at,
             updated_at = now()
       where id = v_old.id and user_id = v_old.user_id;
    end if;
  end if;

  if v_status = 'trialing' and coalesce(v_price.trial_credits, 0) > 0 then
    perform credits.grant_once(p_user_id => v_user, p_amount => v_price.trial_credits,
                               p_kind => 'trial', p_source_key => billing.trial_key(v_sub_id),
                               p_expires_at => billing._expiry(p_now, v_price.plan_expire_days),
                               p_description => 'Trial credits');
  end if;
  return v_user;
end
$$;
