-- Billing: provider webhooks applied in one transaction each (docs/credit-rules.md,
-- docs/api.md#webhooks). This file: the event kinds and their dispatch, and what every handler uses
-- (the user, the price). The handlers: billing_payments.sql, billing_subscriptions.sql,
-- billing_refunds.sql; the inbox that records, retries and replays events: billing_inbox.sql; key
-- formats: keys.sql.
--
-- The web layer turns a Stripe or Creem event into one provider-neutral JSON shape
-- (providers/billing_event.ts) and calls billing.apply_event once. Every credit a payment
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
