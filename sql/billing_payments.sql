-- Payments: a payment recorded once, and the handlers of one-time checkouts (packages and
-- lifetime purchases). Handlers' shared contract and lock order: sql/billing_events.sql.

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
