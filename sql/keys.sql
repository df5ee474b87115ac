-- Keys: the one home of every key format Tally writes into its tables. No other file spells a key
-- prefix: a grant's source key (credits.grants.source_key, unique across all users), a ledger
-- entry's reference (credits.ledger.reference), an inbox event's references
-- (billing.webhook_events.refs, billing.failed_event_refs.ref). The texts are stored, so a format
-- never changes: existing rows would lose their meaning (tests/sql/keys_test.ts compares each
-- function with the literal it replaced).
--
-- Every function here: Inputs as named; Effects none (pure text); Returns the key; Errors none (a
-- null input gives a null key); Locks none. STABLE, not IMMUTABLE, where the body is stable
-- (to_char, text || uuid, text || bigint): PostgreSQL inlines an SQL function only when its
-- declared volatility covers its body, and would otherwise plan it again on every call.

-- An instant as UTC text, for keys (the session's TimeZone must not change a key).
create function billing.iso_utc(p_at timestamptz) returns text
language sql stable parallel safe
as $$ select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') $$;

-- Grants of accounts and the daily run ---------------------------------------------------------

-- signup_gift:<user>, the sign-up gift (app.signup).
create function credits.signup_gift_key(p_user_id uuid) returns text
language sql stable parallel safe
as $$ select 'signup_gift:' || p_user_id $$;

-- free_monthly:<user>:<YYYY-MM of p_at in UTC>, the free plan's credits of a month (app.signup,
-- credits.due_monthly_grants).
create function credits.free_monthly_key(p_user_id uuid, p_at timestamptz) returns text
language sql stable parallel safe
as $$ select 'free_monthly:' || p_user_id || ':' || to_char(p_at at time zone 'UTC', 'YYYY-MM') $$;

-- daily_signin:<user>:<YYYY-MM-DD of p_at in UTC>, one daily sign-in (credits.daily_signin,
-- app.page_dashboard).
create function credits.daily_signin_key(p_user_id uuid, p_at timestamptz) returns text
language sql stable parallel safe
as $$
  select 'daily_signin:' || p_user_id || ':' || to_char(p_at at time zone 'UTC', 'YYYY-MM-DD')
$$;

-- adjustment:<the form's key>, an admin's positive adjustment (app.admin_adjust).
create function credits.adjustment_key(p_key text) returns text
language sql immutable parallel safe
as $$ select 'adjustment:' || p_key $$;

-- api:<the app's source key>, a grant the server-to-server API makes (api.grant). The app's keys
-- live under their own prefix, so an app can never take a key Tally writes (a future month's
-- free_monthly key, say) and stop that grant from happening.
create function credits.api_grant_key(p_source_key text) returns text
language sql immutable parallel safe
as $$ select 'api:' || p_source_key $$;

-- Month slots -------------------------------------------------------------------------------------

-- subscription_monthly:<subscription>:<period start, UTC>, the prefix of a yearly period's slot
-- keys: the grant key of the year's payment (billing.payments.grant_key), under which refunds
-- and disputes find all its slots.
create function credits.yearly_period_key(p_subscription_id bigint, p_period_start timestamptz)
returns text
language sql stable parallel safe
as $$
  select 'subscription_monthly:' || p_subscription_id || ':'
         || to_char(p_period_start at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
$$;

-- <yearly period key>:<slot>, slot 0..11 of a yearly period (the invoice makes slot 0, the daily
-- job the others, so slot 0 happens once).
create function credits.yearly_slot_key(p_subscription_id bigint, p_period_start timestamptz,
                                        p_slot integer) returns text
language sql stable parallel safe
as $$ select credits.yearly_period_key(p_subscription_id, p_period_start) || ':' || p_slot $$;

-- lifetime_monthly:<payment>, the prefix of a lifetime purchase's slot keys (its grant key).
create function credits.lifetime_purchase_key(p_payment_id bigint) returns text
language sql stable parallel safe
as $$ select 'lifetime_monthly:' || p_payment_id $$;

-- lifetime_monthly:<payment>:<slot>, slot k of a lifetime purchase (k months after it).
create function credits.lifetime_slot_key(p_payment_id bigint, p_slot integer) returns text
language sql stable parallel safe
as $$ select credits.lifetime_purchase_key(p_payment_id) || ':' || p_slot $$;

-- Grants of payments ----------------------------------------------------------------------------

-- package:<payment>, a credit package's grant.
create function billing.package_key(p_payment_id bigint) returns text
language sql stable parallel safe
as $$ select 'package:' || p_payment_id $$;

-- The key a one-time purchase's grants live under (billing.payments.grant_key): a package's own
-- grant, or the prefix of a lifetime purchase's month slots; null for any other kind.
create function billing.purchase_key(p_kind text, p_payment_id bigint) returns text
language sql stable parallel safe
as $$
  select case p_kind when 'package' then billing.package_key(p_payment_id)
                     when 'lifetime' then credits.lifetime_purchase_key(p_payment_id) end
$$;

-- subscription_period:<subscription>:<period start, UTC>, a monthly period's grant.
create function billing.period_key(p_subscription_id bigint, p_period_start timestamptz)
returns text
language sql stable parallel safe
as $$
  select 'subscription_period:' || p_subscription_id || ':' || billing.iso_utc(p_period_start)
$$;

-- trial:<subscription>, a subscription's trial credits (once per subscription).
create function billing.trial_key(p_subscription_id bigint) returns text
language sql stable parallel safe
as $$ select 'trial:' || p_subscription_id $$;

-- upgrade:<subscription>:<period start, UTC>:<plan>, an upgrade's grant within a period, also the
-- upgrade payment's grant key.
create function billing.upgrade_key(p_subscription_id bigint, p_period_start timestamptz,
                                    p_plan_id text) returns text
language sql stable parallel safe
as $$
  select 'upgrade:' || p_subscription_id || ':' || billing.iso_utc(p_period_start) || ':'
         || p_plan_id
$$;

-- Ledger references ------------------------------------------------------------------------------

-- refund:<payment>:<refunded total>, the reference of the entries a refund (or a yearly slot made
-- after a partial refund, credits.due_monthly_grants) writes.
create function billing.refund_reference(p_payment_id bigint, p_refunded_total bigint)
returns text
language sql stable parallel safe
as $$ select 'refund:' || p_payment_id || ':' || p_refunded_total $$;

-- dispute:<the provider's dispute ID>, the reference of a dispute's entries.
create function billing.dispute_reference(p_dispute_ref text) returns text
language sql immutable parallel safe
as $$ select 'dispute:' || p_dispute_ref $$;

-- Event references: what an inbox event names (billing._event_refs), locked and matched by ---

-- customer:<the provider's customer ID>
create function billing.customer_event_ref(p_customer_ref text) returns text
language sql immutable parallel safe
as $$ select 'customer:' || p_customer_ref $$;

-- subscription:<the provider's subscription ID>
create function billing.subscription_event_ref(p_subscription_ref text) returns text
language sql immutable parallel safe
as $$ select 'subscription:' || p_subscription_ref $$;

-- payment:<one of the provider's payment IDs>
create function billing.payment_event_ref(p_payment_ref text) returns text
language sql immutable parallel safe
as $$ select 'payment:' || p_payment_ref $$;

-- Reservations -------------------------------------------------------------------------------------

-- settlement:<reservation>, the idempotency key of the usage entry a settlement writes
-- (credits.settle): one settlement per reservation.
create function credits.settlement_key(p_reservation_id bigint) returns text
language sql stable parallel safe
as $$ select 'settlement:' || p_reservation_id $$;
