-- Checkout and billing portal: what the web layer needs to ask a provider for a hosted page.
-- Both functions only read; the payment itself reaches Tally later, through the webhooks
-- (sql/billing_events.sql and the handlers beside it), which is where credits and customers are
-- written.

-- billing.checkout_target(p_user_id, p_price_id)
-- Inputs: the signed-in user and the price ID the client asked for.
-- Returns one row: the price, its provider, its interval ('month', 'year' or 'once'), the plan or
-- package it sells (exactly one is set), the user's email (null for an API customer created
-- without one), and the user's customer reference with that provider (null when the user has
-- never paid with it).
-- Errors: SQLSTATE 22023 when the price is unknown, retired from the plans file, or sells a plan
-- or package that is no longer on sale (the message names the price); 23503 for an unknown user.
-- Effects, idempotency and locks: none; it reads committed rows without locking them.
create function billing.checkout_target(p_user_id uuid, p_price_id text)
returns table (price_id text, provider text, price_interval text, plan_id text,
               package_id text, email text, customer_ref text)
language plpgsql stable
as $$
declare
  v_email text;
begin
  select u.email into v_email from app.users u where u.id = p_user_id;
  if not found then
    raise exception 'unknown user %', p_user_id using errcode = '23503';
  end if;

  -- RETURN QUERY wants the declared types exactly: the provider column is a billing.provider.
  return query
    select pr.price_id, pr.provider::text, pr.interval, pr.plan_id, pr.package_id, v_email,
           c.customer_ref
      from billing.prices pr
      left join billing.plans pl on pl.id = pr.plan_id
      left join billing.packages pk on pk.id = pr.package_id
      left join billing.customers c on c.user_id = p_user_id and c.provider = pr.provider
     where pr.price_id = p_price_id
       and pr.active
       and coalesce(pl.active, pk.active)
       and coalesce(pl.kind, 'package') <> 'free';
  if not found then
    raise exception 'price % is not for sale', p_price_id using errcode = '22023';
  end if;
end
$$;

-- billing.portal_customer(p_user_id, p_now)
-- Inputs: the signed-in user; p_now decides which subscriptions are still in force.
-- Returns at most one row (provider, customer_ref): the customer of the provider that bills the
-- user's subscription in force at p_now (the one with the latest period end when there are
-- several), else the user's most recently recorded customer. No row when the user has never paid.
-- Errors: none. Effects, idempotency and locks: none; it only reads.
create function billing.portal_customer(p_user_id uuid, p_now timestamptz default now())
returns table (provider text, customer_ref text)
language sql stable
as $$
  select c.provider, c.customer_ref
    from billing.customers c
    left join lateral (
      select max(s.current_period_end) as paid_until
        from billing.subscriptions s
       where s.user_id = c.user_id and s.provider = c.provider
         and s.status in ('active', 'trialing', 'past_due')
         and s.current_period_end > p_now
    ) sub on true
   where c.user_id = p_user_id
   order by sub.paid_until desc nulls last, c.created_at desc, c.provider
   limit 1
$$;

-- billing.record_checkout(p_provider, p_checkout_ref, p_user_id, p_price_id)
-- Effects: remembers that Tally created this checkout for this user and price, so the webhook that
--   reports its payment can read the price from Tally's own record.
-- Idempotency key: (provider, checkout_ref); a repeat changes nothing.
-- Errors: 23503 for an unknown user or price. Locks: none beyond the insert.
create function billing.record_checkout(p_provider text, p_checkout_ref text, p_user_id uuid,
                                        p_price_id text) returns void
language sql
as $$
  insert into billing.checkouts (provider, checkout_ref, user_id, price_id)
  values (p_provider, p_checkout_ref, p_user_id, p_price_id)
  on conflict (provider, checkout_ref) do nothing
$$;
