-- Billing: provider webhooks applied in one transaction each (contract sections 4 and 5).
--
-- The web layer turns a Stripe or Creem event into one provider-neutral JSON shape
-- (utils/providers/billing_event.ts) and calls billing.apply_event once. Every credit a payment
-- is worth comes from the catalogue tables by price ID; nothing in an event's metadata or amounts
-- decides credits (amounts only decide the refunded share).
--
-- Event kinds (p_event ->> 'kind'):
--   checkout_paid         a one-time price paid: a credit package or a lifetime purchase
--   checkout_linked       a checkout that tells whose customer / subscription it is (no payment)
--   period_paid           a subscription invoice paid: the period's credits
--   subscription_changed  Tally's copy of a subscription's plan, status and period
--   refund, dispute       credits of a payment's grants taken back
--   ignored               recorded, nothing else
--   unstorable            a signed event PostgreSQL cannot hold as sent: kept failed, with the reason
-- customer = {userId, customerRef, email}: the user is found by userId (Tally's checkout sets
-- it), else the provider's customer ID, else the subscription's recorded owner, else the email.
--
-- Locks, in this order (with sql/credits.sql's discipline after them):
--   1. the event key's advisory lock, then its inbox row when it exists (a concurrent duplicate
--      waits here);
--   2. transaction advisory locks on the event's references, sorted (billing._lock_refs): events
--      about one customer, subscription or payment apply one after another, so a payment and the
--      checkout that names its user never miss each other;
--   3. then, through credits.grant_once / billing._claw_back, the batch lock (shared) and the
--      user's balance row, then grants.
--
-- The handlers, billing._apply_<kind>(p_provider, p_event, p_now), one per event kind, share one
-- contract; each one's header adds its effects, keys, errors and locks:
--   Inputs: the provider (billing.provider), the event in the neutral shape, the clock.
--   Returns: the user the event concerned.
--   Errors: BL001, a business failure (billing.raise_failure): billing._run rolls the handler's
--     sub-transaction back and the event is kept failed with the message, to be retried.
--   Locks: the event's key and reference locks (1 and 2 above) are held by the caller.
-- "Reads only" in a contract below means: no effects, so no idempotency key; no locks (it reads
-- committed rows under its statement's snapshot); no errors unless it names some.

-- billing.raise_failure(p_message): raises BL001, a business failure: the event is kept as
-- 'failed' with this message. Effects none. Locks none.
create function billing.raise_failure(p_message text) returns void
language plpgsql
as $$
begin
  raise exception using errcode = 'BL001', message = p_message;
end
$$;

-- billing._event_refs(p_event)
-- Returns the references an event names (their formats: sql/keys.sql's event references).
-- plpgsql rather than SQL: an SQL function with an aggregate is never inlined and would be planned
-- again on every webhook; plpgsql keeps the plan for the session. Reads only (the event).
create function billing._event_refs(p_event jsonb) returns text[]
language plpgsql stable parallel safe
as $$
begin
  return (
    select coalesce(array_agg(distinct r order by r), '{}')
      from (
        select billing.customer_event_ref(p_event #>> '{customer,customerRef}') as r
        union all
        select billing.subscription_event_ref(p_event ->> 'subscriptionRef')
        union all
        select billing.payment_event_ref(x)
          from jsonb_array_elements_text(coalesce(p_event -> 'paymentRefs', '[]')) x
      ) refs
     where r is not null);
end
$$;

-- billing._find_user(p_provider, p_customer, p_subscription_ref)
-- Returns the user an event is about, or null: the recorded owner of the subscription, else
-- customer.userId when it names a user, else the provider's customer ID, else the email of an
-- account that verified it (an unverified address may belong to someone else). Reads only.
create function billing._find_user(p_provider billing.provider,
                                   p_customer jsonb, p_subscription_ref text)
returns uuid
language plpgsql stable
as $$
declare
  v_user uuid;
  v_claimed text := p_customer ->> 'userId';
begin
  if p_subscription_ref is not null then
    select s.user_id into v_user from billing.subscriptions s
     where s.provider = p_provider and s.provider_ref = p_subscription_ref;
    if found then
      return v_user;
    end if;
  end if;
  if v_claimed ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select u.id into v_user from app.users u where u.id = v_claimed::uuid;
    if found then
      return v_user;
    end if;
  end if;
  if p_customer ->> 'customerRef' is not null then
    select c.user_id into v_user from billing.customers c
     where c.provider = p_provider and c.customer_ref = p_customer ->> 'customerRef';
    if found then
      return v_user;
    end if;
  end if;
  if p_customer ->> 'email' is not null then
    select u.id into v_user from app.users u
     where u.email = lower(trim(p_customer ->> 'email')) and u.email_verified_at is not null;
  end if;
  return v_user;
end
$$;

-- billing._user_of(p_provider, p_customer, p_subscription_ref)
-- Effects: finds the user (see _find_user) and records the customer ID for that user when it is
--   new (a user keeps the first customer ID per provider; an ID already owned stays with its
--   owner).
-- Errors: BL001 when no user matches.
create function billing._user_of(p_provider billing.provider,
                                 p_customer jsonb, p_subscription_ref text)
returns uuid
language plpgsql
as $$
declare
  v_user uuid := billing._find_user(p_provider, p_customer, p_subscription_ref);
begin
  if v_user is null then
    perform billing.raise_failure(format(
      'no matching user (user_id %s, customer %s, email %s)',
      coalesce(p_customer ->> 'userId', '-'), coalesce(p_customer ->> 'customerRef', '-'),
      coalesce(p_customer ->> 'email', '-')));
  end if;
  if p_customer ->> 'customerRef' is not null then
    insert into billing.customers (user_id, provider, customer_ref)
    values (v_user, p_provider, p_customer ->> 'customerRef')
    on conflict do nothing;
  end if;
  return v_user;
end
$$;

-- billing._price(p_provider, p_price_id, p_subscription_only)
-- Returns the price with what it sells: plan (kind, monthly and trial credits, expiry days) or
-- package (credits, expiry days). Retired prices still count: a renewal may be on one.
-- Errors: BL001 for a price the plans file never had, or one of another provider; with
--   p_subscription_only, also for a price that is not a plan's monthly or yearly price.
create function billing._price(p_provider billing.provider, p_price_id text,
                               p_subscription_only boolean default false,
                               out price_id text, out price_interval text, out plan_id text,
                               out plan_kind text, out monthly_credits bigint,
                               out trial_credits bigint, out plan_expire_days integer,
                               out package_id text, out package_credits bigint,
                               out package_expire_days integer)
language plpgsql stable
as $$
begin
  select pr.price_id, pr.interval, pl.id, pl.kind, pl.monthly_credits, pl.trial_credits,
         pl.credits_expire_days, pk.id, pk.credits, pk.expires_days
    into price_id, price_interval, plan_id, plan_kind, monthly_credits, trial_credits,
         plan_expire_days, package_id, package_credits, package_expire_days
    from billing.prices pr
    left join billing.plans pl on pl.id = pr.plan_id
    left join billing.packages pk on pk.id = pr.package_id
   where pr.price_id = p_price_id and pr.provider = p_provider;
  if not found then
    perform billing.raise_failure(format('unknown %s price %L (not in the plans file)',
                                         p_provider, p_price_id));
  end if;
  if p_subscription_only and (plan_id is null or price_interval not in ('month', 'year')) then
    perform billing.raise_failure(format('price %L is not a subscription price', price_id));
  end if;
end
$$;

-- billing._expiry(p_now, p_days): when credits granted at p_now expire: p_days later, or never
-- (null) when the plans file sets no expiry. Pure: effects, errors and locks none.
create function billing._expiry(p_now timestamptz, p_days integer) returns timestamptz
language sql immutable parallel safe
as $$ select credits.add_days_utc(p_now, p_days) $$;

-- billing._record_payment(...)
-- Effects: records a payment once: finds it by any of its references, else inserts it; then
--   records all of p_refs as references of it. Also the key the payment's grants live under
--   (refunds and disputes find its grants by it, billing._payment_grants): p_grant_key for a
--   subscription payment (null when it grants nothing), billing.purchase_key for a package or
--   lifetime purchase. It is written with a new row, or set on a known payment that has none yet
--   (a payment keeps the first key it was given).
-- Returns the payment's id. Idempotency key: (provider, any reference).
-- Each statement here is planned once per session: the currency fallback is a statement of its
-- own, because a sub-select inside the insert made PostgreSQL plan the insert anew on every call.
create function billing._record_payment(p_provider billing.provider, p_user_id uuid, p_event jsonb,
                                        p_price_id text, p_kind billing.payment_kind,
                                        p_subscription_id bigint,
                                        p_period_start timestamptz, p_grant_key text)
returns bigint
language plpgsql
as $$
declare
  v_payment_id bigint;
  v_payment_user uuid;
  v_refs text[] := array(select jsonb_array_elements_text(p_event -> 'paymentRefs'));
  v_currency text := lower(p_event ->> 'currency');
  v_written boolean := false;
begin
  select r.payment_id, r.user_id into v_payment_id, v_payment_user from billing.payment_refs r
   where r.provider = p_provider and r.ref = any (v_refs)
   limit 1;
  if v_payment_id is null then
    if v_currency is null then
      select s.currency into v_currency from billing.settings s;
    end if;
    -- The id is drawn first, so that a purchase's key (which names it) goes in with the row.
    v_payment_id := nextval('billing.payments_id_seq'::regclass);
    insert into billing.payments (id, user_id, provider, provider_ref, price_id, kind,
                                  subscription_id, amount, currency, paid_at, period_start,
                                  grant_key)
    overriding system value
    values (v_payment_id, p_user_id, p_provider, p_event ->> 'paymentRef', p_price_id, p_kind,
            p_subscription_id, greatest(0, coalesce((p_event ->> 'amount')::bigint, 0)),
            v_currency, coalesce((p_event ->> 'paidAt')::timestamptz, now()), p_period_start,
            coalesce(p_grant_key, billing.purchase_key(p_kind, v_payment_id)))
    on conflict (provider, provider_ref) do nothing;
    v_written := found;
    v_payment_user := p_user_id; -- the lookup above, finding nothing, set it to null
    if not v_written then
      select p.id, p.user_id into v_payment_id, v_payment_user from billing.payments p
       where p.provider = p_provider and p.provider_ref = p_event ->> 'paymentRef';
    end if;
  end if;
  if not v_written and coalesce(p_grant_key, billing.purchase_key(p_kind, v_payment_id)) is not null
  then
    update billing.payments
       set grant_key = coalesce(p_grant_key, billing.purchase_key(p_kind, v_payment_id))
     where user_id = v_payment_user and id = v_payment_id and grant_key is null;
  end if;
  insert into billing.payment_refs (provider, ref, user_id, payment_id)
  select p_provider, r, v_payment_user, v_payment_id
    from unnest(v_refs || (p_event ->> 'paymentRef')) r
  on conflict do nothing;
  return v_payment_id;
end
$$;

-- checkout_paid: a package's credits, or a lifetime purchase's slot 0, once per payment.
--   The price is the event's (Stripe's expanded line items, Creem's product), else Tally's own
--   record of the checkout (billing.checkouts); credits come from the catalogue by that price.
--   A subscription price only links the customer (its invoice brings the credits).
-- Errors: BL001 for no matching user, no price, or a price the plans file never had.
-- Idempotency key: the payment (billing._record_payment), then the grant's source key.
-- Locks: through credits.grant_once, the batch lock (shared), then the user's balance row.
create function billing._apply_checkout_paid(p_provider billing.provider,
                                             p_event jsonb, p_now timestamptz)
returns uuid
language plpgsql
as $$
declare
  v_user uuid := billing._user_of(p_provider, p_event -> 'customer', null);
  v_price record;
  v_price_id text := p_event ->> 'priceId';
  v_payment_id bigint;
begin
  if v_price_id is null then
    select c.price_id into v_price_id from billing.checkouts c
     where c.provider = p_provider and c.checkout_ref = p_event ->> 'checkoutRef';
    if not found then
      perform billing.raise_failure(format(
        'checkout %s names no price, and Tally did not create it (no billing.checkouts row)',
        p_event ->> 'checkoutRef'));
    end if;
  end if;
  select * into v_price from billing._price(p_provider, v_price_id);
  if v_price.price_interval <> 'once' then
    -- A checkout that started a subscription: its invoice brings the credits.
    return v_user;
  end if;
  if v_price.package_id is not null then
    v_payment_id := billing._record_payment(
      p_provider => p_provider, p_user_id => v_user, p_event => p_event,
      p_price_id => v_price.price_id, p_kind => 'package', p_subscription_id => null,
      p_period_start => null, p_grant_key => null);
    perform credits.grant_once(p_user_id => v_user, p_amount => v_price.package_credits,
                               p_kind => 'package',
                               p_source_key => billing.package_key(v_payment_id),
                               p_expires_at => billing._expiry(p_now, v_price.package_expire_days),
                               p_description => 'Credit package ' || v_price.package_id);
  else
    v_payment_id := billing._record_payment(
      p_provider => p_provider, p_user_id => v_user, p_event => p_event,
      p_price_id => v_price.price_id, p_kind => 'lifetime', p_subscription_id => null,
      p_period_start => null, p_grant_key => null);
    -- Slot 0 only while the purchase stands: a checkout redelivered after any refund or a
    -- dispute grants nothing.
    perform credits.grant_once(p_user_id => v_user, p_amount => v_price.monthly_credits,
                               p_kind => 'lifetime_monthly',
                               p_source_key => credits.lifetime_slot_key(v_payment_id, 0),
                               p_expires_at => billing._expiry(p_now, v_price.plan_expire_days),
                               p_description => 'Lifetime plan monthly credits')
       from billing.payments p
      where p.user_id = v_user and p.id = v_payment_id and p.disputed_at is null
        and p.refunded_at is null and v_price.monthly_credits > 0;
  end if;
  return v_user;
end
$$;

-- checkout_linked: remembers whose customer (and subscription) a checkout was. Grants nothing.
-- Effects: billing._user_of (the customer ID recorded for the user when new).
-- Errors: BL001 for no matching user. Idempotency key: (provider, customer ID): billing.customers
--   keeps the first owner. Locks: none beyond the caller's (the customers row it inserts).
create function billing._apply_checkout_linked(p_provider billing.provider,
                                               p_event jsonb, p_now timestamptz)
returns uuid
language plpgsql
as $$
begin
  return billing._user_of(p_provider, p_event -> 'customer', null);
end
$$;

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
--   more than the richest plan paid for in it (contract section 4). An upgrade to plan X from
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

-- billing._payment_of(p_provider, p_event)
-- Returns the payment a refund or dispute names (by any of its references), its row locked, after
-- locking its user's balance row first (sql/credits.sql's lock order).
-- Errors: BL001 when no payment is known under those references (yet: the event is retried when
--   the payment arrives).
create function billing._payment_of(p_provider billing.provider, p_event jsonb,
                                    out user_id uuid, out payment_id bigint, out amount bigint,
                                    out refunded_amount bigint, out grant_key text)
language plpgsql
as $$
begin
  select r.user_id, r.payment_id into user_id, payment_id
    from billing.payment_refs r
   where r.provider = p_provider
     and r.ref in (select jsonb_array_elements_text(p_event -> 'paymentRefs'))
   limit 1;
  if not found then
    perform billing.raise_failure(format('no %s payment known as %s', p_provider,
                                         p_event -> 'paymentRefs'));
  end if;
  perform credits.lock_batch_shared();
  perform 1 from credits.balances b where b.user_id = _payment_of.user_id for update;
  select p.amount, p.refunded_amount, p.grant_key into amount, refunded_amount, grant_key
    from billing.payments p
   where p.user_id = _payment_of.user_id and p.id = _payment_of.payment_id
     for update;
end
$$;

-- billing._claw_back(p_user_id, p_grant_ids, p_amounts, p_kind, p_reference, p_now)
-- Effects: takes up to p_amounts[i] unspent credits from grant p_grant_ids[i] of the user, never
--   more than the grant has left (so the balance never goes negative), lowers the balance, and
--   appends one ledger entry of p_kind ('refund' or 'dispute') per grant it took from. Expiries
--   due at p_now are recorded first. Set-based.
-- Returns the credits removed. Idempotency key: (user, grant, kind, p_reference), which the
--   ledger's unique index enforces; a repeat takes nothing.
-- Locks: the batch lock (shared), then the user's balance row, then the grants.
create function billing._claw_back(p_user_id uuid, p_grant_ids bigint[], p_amounts bigint[],
                                   p_kind credits.entry_kind, p_reference text,
                                   p_now timestamptz)
returns bigint
language plpgsql
as $$
declare
  v_removed bigint;
begin
  perform credits.lock_batch_shared();
  perform 1 from credits.balances where user_id = p_user_id for update;
  perform credits._expire_locked(p_user_id, p_now);
  with wanted as (
    select w.grant_id, w.amount from unnest(p_grant_ids, p_amounts) as w (grant_id, amount)
     where w.amount > 0
  ), picked as (
    select g.id, least(g.remaining, w.amount) as take
      from credits.grants g
      join wanted w on w.grant_id = g.id
     where g.user_id = p_user_id and g.remaining > 0
       and (g.expires_at is null or g.expires_at > p_now)
       and not exists (select 1 from credits.ledger l
                        where l.user_id = p_user_id and l.grant_id = g.id and l.kind = p_kind
                          and l.reference = p_reference)
  ), taken as (
    update credits.grants g
       set remaining = g.remaining - p.take
      from picked p
     where g.user_id = p_user_id and g.id = p.id
    returning g.id, p.take
  ), ordered as (
    select id, take, sum(take) over (order by id) as running, sum(take) over () as total
      from taken
  ), balance as (
    update credits.balances b
       set balance = b.balance - (select max(total) from ordered), updated_at = now()
     where b.user_id = p_user_id and exists (select 1 from ordered)
    returning b.balance
  ), entries as (
    insert into credits.ledger (user_id, kind, amount, balance_after, description, grant_id,
                                reference)
    select p_user_id, p_kind, -o.take, b.balance + o.total - o.running,
           credits.kind_label(p_kind), o.id, p_reference
      from ordered o cross join balance b
     order by o.running
    returning amount
  )
  select coalesce(-sum(amount), 0) into v_removed from entries;
  return v_removed;
end
$$;

-- billing._payment_grants(p_user_id, p_grant_key): the grants a payment made: its grant key, or
-- the month slots under it (also those that the daily job made after the payment). Reads only.
create function billing._payment_grants(p_user_id uuid, p_grant_key text)
returns table (grant_id bigint, amount bigint)
language sql stable
as $$
  select g.id, g.amount from credits.grants g
   where g.user_id = p_user_id and p_grant_key is not null
     and (g.source_key = p_grant_key or starts_with(g.source_key, p_grant_key || ':'))
$$;

-- billing._refund_shares(p_user_id, p_grant_key, p_refunded, p_paid)
-- Returns, per grant of a payment, what a refunded total of p_refunded out of p_paid still has to
--   take from it: its share of round(G × R ÷ P), G the credits of all the payment's grants,
--   apportioned by largest remainder (so the shares add up to the rounded total, where rounding
--   each month slot alone would not), minus what refunds already took from that grant. G counts
--   each grant at its amount (a month slot's worth): a yearly slot the daily job made after an
--   earlier partial refund carries that refund's share as a refund entry already
--   (credits.due_monthly_grants), so only the further share is taken here.
-- Inputs: the caller holds the user's balance row (no refund of the user runs meanwhile).
-- Reads only.
create function billing._refund_shares(p_user_id uuid, p_grant_key text, p_refunded bigint,
                                       p_paid bigint)
returns table (grant_id bigint, amount bigint)
language sql stable
as $$
  with exact as (
    select g.grant_id, g.amount::numeric * p_refunded / p_paid as share,
           round(sum(g.amount) over ()::numeric * p_refunded / p_paid) as total
      from billing._payment_grants(p_user_id, p_grant_key) g
  ), ranked as (
    select e.grant_id, floor(e.share) as base, e.total,
           sum(floor(e.share)) over () as base_total,
           row_number() over (order by e.share - floor(e.share) desc, e.grant_id) as place
      from exact e
  )
  select r.grant_id,
         (r.base + case when r.place <= r.total - r.base_total then 1 else 0 end
          - coalesce((select -sum(l.amount) from credits.ledger l
                       where l.user_id = p_user_id and l.grant_id = r.grant_id
                         and l.kind = 'refund'), 0))::bigint
    from ranked r
$$;

-- refund: the payment's refunded total becomes R (refundedTotal, the provider's cumulative
--   figure, or the previous total + amount), capped at the payment; the payment's grants lose
--   round(G × R ÷ P) in all, less what earlier refunds took (billing._refund_shares), each at
--   most what it has left. Any refund ends a lifetime purchase (its later slots, its plan);
--   the year's later slots then shrink to round(monthlyCredits × (P − R) ÷ P), and end when
--   R = P (credits.due_monthly_grants).
-- Idempotency: a cumulative figure never lowers R (a late, older figure changes nothing); a
--   refund reported by its own amount counts once per (provider, refundRef) in billing.refunds.
--   The credits taken: the ledger references billing.refund_reference(payment, R).
-- Errors: BL001 when no payment is known under its references (billing._payment_of; retried
--   when the payment arrives).
-- Locks: billing._payment_of's (batch lock shared, balance row, payment row), then the grants.
create function billing._apply_refund(p_provider billing.provider, p_event jsonb, p_now timestamptz)
returns uuid
language plpgsql
as $$
declare
  v_payment record;
  v_total bigint;
begin
  select * into v_payment from billing._payment_of(p_provider, p_event);
  if p_event ->> 'refundedTotal' is null then
    insert into billing.refunds (provider, refund_ref, user_id, payment_id, amount, refunded_at)
    values (p_provider, p_event ->> 'refundRef', v_payment.user_id, v_payment.payment_id,
            greatest(0, coalesce((p_event ->> 'amount')::bigint, 0)), p_now)
    on conflict (provider, refund_ref) do nothing;
    if not found then
      return v_payment.user_id;
    end if;
  end if;
  v_total := least(v_payment.amount, case
    when p_event ->> 'refundedTotal' is not null
      then greatest(v_payment.refunded_amount, (p_event ->> 'refundedTotal')::bigint)
    else v_payment.refunded_amount + greatest(0, coalesce((p_event ->> 'amount')::bigint, 0))
  end);
  if v_total <= v_payment.refunded_amount then
    return v_payment.user_id;
  end if;
  update billing.payments
     set refunded_amount = v_total,
         refunded_at = case when v_total >= amount then coalesce(refunded_at, p_now)
                            else refunded_at end
   where user_id = v_payment.user_id and id = v_payment.payment_id;
  if v_payment.amount > 0 then
    perform billing._claw_back(
              p_user_id => v_payment.user_id, p_grant_ids => array_agg(s.grant_id),
              p_amounts => array_agg(s.amount), p_kind => 'refund',
              p_reference => billing.refund_reference(v_payment.payment_id, v_total),
              p_now => p_now)
       from billing._refund_shares(v_payment.user_id, v_payment.grant_key, v_total,
                                   v_payment.amount) s
     having count(*) > 0;
  end if;
  return v_payment.user_id;
end
$$;

-- dispute: marks the payment disputed (which ends a lifetime purchase and a yearly payment's
--   later slots) and takes every unspent credit of its grants, once per dispute.
-- Idempotency key: the ledger reference billing.dispute_reference(disputeRef), per grant
--   (billing._claw_back); disputed_at keeps the first time.
-- Errors: BL001 when no payment is known under its references (billing._payment_of).
-- Locks: billing._payment_of's (batch lock shared, balance row, payment row), then the grants.
create function billing._apply_dispute(p_provider billing.provider,
                                       p_event jsonb, p_now timestamptz)
returns uuid
language plpgsql
as $$
declare
  v_payment record;
begin
  select * into v_payment from billing._payment_of(p_provider, p_event);
  update billing.payments set disputed_at = coalesce(disputed_at, p_now)
   where user_id = v_payment.user_id and id = v_payment.payment_id;
  perform billing._claw_back(
            p_user_id => v_payment.user_id, p_grant_ids => array_agg(g.grant_id),
            p_amounts => array_agg(g.amount), p_kind => 'dispute',
            p_reference => billing.dispute_reference(p_event ->> 'disputeRef'), p_now => p_now)
     from billing._payment_grants(v_payment.user_id, v_payment.grant_key) g
   having count(*) > 0;
  return v_payment.user_id;
end
$$;

-- billing._apply(p_provider, p_event, p_now)
-- Applies one neutral event by its kind (see the header); returns the user it concerned.
-- Errors: BL001 (business failures, the event is kept as failed), including an unknown kind.
-- Effects, idempotency and locks: the handler's.
create function billing._apply(p_provider billing.provider,
                               p_event jsonb, p_now timestamptz) returns uuid
language plpgsql
as $$
begin
  case p_event ->> 'kind'
    when 'checkout_paid' then return billing._apply_checkout_paid(p_provider, p_event, p_now);
    when 'checkout_linked' then return billing._apply_checkout_linked(p_provider, p_event, p_now);
    when 'period_paid' then return billing._apply_period_paid(p_provider, p_event, p_now);
    when 'subscription_changed' then
      return billing._apply_subscription_changed(p_provider, p_event, p_now);
    when 'refund' then return billing._apply_refund(p_provider, p_event, p_now);
    when 'dispute' then return billing._apply_dispute(p_provider, p_event, p_now);
    -- A signed event that could not be stored as sent (a NUL character): kept failed, with why.
    when 'unstorable' then perform billing.raise_failure(p_event ->> 'reason');
    else perform billing.raise_failure(format('unknown event kind %L', p_event ->> 'kind'));
  end case;
  return null;
end
$$;

-- billing._run(p_provider, p_event, p_refs, p_now)
-- Effects: applies an event (billing._apply) in a sub-transaction, after locking its references
--   (_lock_refs). Writes nothing to the inbox: the callers record the outcome.
-- Returns status 'processed' (and the user it concerned), 'ignored' (a kind Tally does not act
--   on), or 'failed' with the error text: a business failure rolls the sub-transaction back, so
--   nothing of it stays. A transient fault (deadlock, serialization, shutdown, lost connection)
--   is raised, so that the whole transaction rolls back and the provider retries.
-- Idempotency: the handler's keys. Locks: the event's references (billing._lock_refs), then the
--   handler's.
create function billing._run(p_provider billing.provider,
                             p_event jsonb, p_refs text[], p_now timestamptz,
                             out status text, out user_id uuid, out error text)
language plpgsql
as $$
declare
  v_state text;
begin
  if p_event ->> 'kind' = 'ignored' then
    status := 'ignored';
    return;
  end if;
  perform billing._lock_refs(p_provider, p_refs);
  begin
    user_id := billing._apply(p_provider, p_event, p_now);
    status := 'processed';
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, error = message_text;
    if v_state in ('40001', '40P01') or left(v_state, 2) in ('08', '53', '57') then
      raise;
    end if;
    status := 'failed';
    user_id := null;
  end;
end
$$;

-- billing._retry_related(p_provider, p_event_id, p_refs, p_now)
-- Effects: after an event was processed, attempts again every other failed event of the provider
--   that shares a reference with it (the payment whose checkout named its user, the refund whose
--   payment arrived), oldest first, skipping rows another transaction holds.
-- Returns nothing. Errors: only transient faults (billing._run raises them). Idempotent: a
--   retried event that is processed leaves the failed set.
-- Locks: each related inbox row (skipping the locked ones), then that event's locks (_attempt).
-- Cost: one probe of billing.failed_event_refs per reference when nothing is related (the usual
--   case); the inbox is read only for the events found there.
create function billing._retry_related(p_provider billing.provider, p_event_id text, p_refs text[],
                                       p_now timestamptz) returns void
language plpgsql
as $$
declare
  v_related text[];
  v_other record;
begin
  select array_agg(distinct f.event_id) into v_related
    from billing.failed_event_refs f
   where f.ref = any (p_refs) and f.provider = p_provider and f.event_id <> p_event_id;
  if v_related is null then
    return;
  end if;
  -- A loop, not a set: each retry is a whole application with its own sub-transaction.
  for v_other in
    select e.event_id from billing.webhook_events e
     where e.provider = p_provider and e.event_id = any (v_related) and e.status = 'failed'
     order by e.received_at
       for update skip locked
  loop
    perform billing._attempt(p_provider, v_other.event_id, p_now);
  end loop;
end
$$;

-- billing._attempt(p_provider, p_event_id, p_now)
-- Inputs: an inbox row that the caller has locked (a failed event delivered again, replayed, or
--   retried because a related event was processed).
-- Effects: runs the stored event (billing._run) and records the outcome on the row (status,
--   error, attempts, times); when processed, retries the related failed events.
-- Returns 'processed', 'ignored' or 'failed'. Errors: only transient faults (billing._run).
-- Idempotency: the handler's keys. Locks: the caller's lock on the row, then see the header.
create function billing._attempt(p_provider billing.provider, p_event_id text, p_now timestamptz)
returns text
language plpgsql
as $$
declare
  v_event jsonb;
  v_refs text[];
  v_outcome record;
begin
  select e.event, e.refs into v_event, v_refs from billing.webhook_events e
   where e.provider = p_provider and e.event_id = p_event_id;
  select * into v_outcome from billing._run(p_provider, v_event, v_refs, p_now);
  update billing.webhook_events
     set status = v_outcome.status, user_id = coalesce(v_outcome.user_id, user_id),
         error = v_outcome.error, attempts = attempts + 1, last_attempt_at = now(),
         processed_at = case when v_outcome.status = 'failed' then processed_at else now() end
   where provider = p_provider and event_id = p_event_id;
  if v_outcome.status <> 'failed' then
    delete from billing.failed_event_refs f
     where f.ref = any (v_refs) and f.provider = p_provider and f.event_id = p_event_id;
  end if;
  if v_outcome.status = 'processed' then
    perform billing._retry_related(p_provider, p_event_id, v_refs, p_now);
  end if;
  return v_outcome.status;
end
$$;

-- billing.apply_event(p_provider, p_event_id, p_type, p_event, p_now)
-- Inputs: the provider ('stripe' | 'creem'), its event ID and type, the event in the neutral
--   shape (utils/providers/billing_event.ts), the clock.
-- Effects, in the caller's one transaction: a new event is run (billing._run) and then recorded in
--   billing.webhook_events, keyed by (provider, event ID), with its outcome: one write of the
--   inbox row. A repeat of a processed or ignored event changes nothing; a repeat of a failed one
--   attempts it again (billing._attempt).
-- Returns 'processed', 'duplicate', 'ignored' or 'failed'.
-- Idempotency key: (p_provider, p_event_id). Deliveries of one event take a transaction advisory
--   lock on that key first, so a concurrent duplicate waits until the first commits, then finds
--   its row and answers 'duplicate'.
-- Errors: 22023 for an unknown provider, an empty event ID or an event that is not an object.
-- Locks: the event key's advisory lock, the inbox row if it exists, then see the header.
create function billing.apply_event(p_provider text, p_event_id text, p_type text, p_event jsonb,
                                    p_now timestamptz default now())
returns text
language plpgsql
as $$
declare
  v_status text;
  v_refs text[];
  v_outcome record;
begin
  if p_provider is null or p_provider not in ('stripe', 'creem') then
    perform credits.raise_invalid(format('unknown provider %L', p_provider));
  end if;
  if p_event_id is null or p_event_id = '' or jsonb_typeof(p_event) is distinct from 'object' then
    perform credits.raise_invalid('an event needs an ID and an object');
  end if;
  perform billing.lock_event(p_provider, p_event_id);
  select e.status into v_status from billing.webhook_events e
   where e.provider = p_provider and e.event_id = p_event_id
     for update;
  if found then
    if v_status <> 'failed' then
      return 'duplicate';
    end if;
    return billing._attempt(p_provider, p_event_id, p_now);
  end if;

  v_refs := billing._event_refs(p_event);
  select * into v_outcome from billing._run(p_provider, p_event, v_refs, p_now);
  insert into billing.webhook_events (provider, event_id, type, event, status, refs, user_id,
                                      error, attempts, received_at, last_attempt_at,
                                      processed_at)
  values (p_provider, p_event_id, coalesce(p_type, ''), p_event, v_outcome.status, v_refs,
          v_outcome.user_id, v_outcome.error, 1, now(), now(),
          case when v_outcome.status = 'failed' then null else now() end);
  if v_outcome.status = 'failed' then
    insert into billing.failed_event_refs (ref, provider, event_id)
    select distinct r, p_provider, p_event_id from unnest(v_refs) r;
  elsif v_outcome.status = 'processed' then
    perform billing._retry_related(p_provider, p_event_id, v_refs, p_now);
  end if;
  return v_outcome.status;
end
$$;

-- billing.replay_event(p_provider, p_event_id, p_now)
-- Effects: attempts a failed event of the inbox again, from its stored neutral shape (after the
--   cause was fixed, e.g. the missing price loaded with billing.load_plans).
-- Returns 'processed' or 'failed'; 'duplicate' for an event already processed or ignored.
-- Idempotent: a processed event is never applied twice. Errors: 23503 for an unknown event.
-- Locks: the inbox row (a concurrent replay waits, then answers 'duplicate'), then see the header.
create function billing.replay_event(p_provider text, p_event_id text,
                                     p_now timestamptz default now())
returns text
language plpgsql
as $$
declare
  v_status text;
begin
  select e.status into v_status from billing.webhook_events e
   where e.provider = p_provider and e.event_id = p_event_id
     for update;
  if not found then
    raise exception using errcode = '23503',
      message = format('no %s event %L in the inbox', p_provider, p_event_id);
  end if;
  if v_status <> 'failed' then
    return 'duplicate';
  end if;
  return billing._attempt(p_provider, p_event_id, p_now);
end
$$;

-- billing.webhook_inbox(p_status, p_limit)
-- Returns the newest inbox rows (all statuses when p_status is null) for the admin, as JSON.
-- Reads only.
create function billing.webhook_inbox(p_status text default 'failed', p_limit integer default 50)
returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'provider', e.provider, 'eventId', e.event_id, 'type', e.type, 'status', e.status,
           'error', e.error, 'attempts', e.attempts, 'userId', e.user_id,
           'receivedAt', e.received_at, 'lastAttemptAt', e.last_attempt_at,
           'processedAt', e.processed_at, 'event', e.event)
         order by e.received_at desc), '[]')
    from (select * from billing.webhook_events e
           where p_status is null or e.status = p_status
           order by e.received_at desc
           limit greatest(1, least(p_limit, 500))) e
$$;
