-- A walk through Tally's credit rules in SQL: grant, consume, expiry, a payment webhook, a refund.
-- Run by tests/examples_test.ts on a fresh database; its output is credits_walk.out.
--
-- The clock. Every p_now below is a fixed offset from t0, which is read once, here. Not a calendar
-- date: a grant and a consumption also record the expiries that are due by the real clock, so a
-- date in the past would expire this walk's grants early. Times are printed as offsets from t0,
-- so the output is the same on every run.
select set_config('example.t0', now()::text, false) is not null as clock_set;

create function pg_temp.at(p_offset interval) returns timestamptz
language sql stable
as $$ select current_setting('example.t0')::timestamptz + p_offset $$;

-- A user, inserted directly: no sign-up gift (app.signup would grant one). Fixed id.
insert into app.users (id, email)
values ('00000000-0000-4000-8000-000000000001', 'ada@example.com');

select credits.balance('00000000-0000-4000-8000-000000000001', pg_temp.at('0 days')) as balance;

-- 1. Grants. A bonus of 100 that expires after 10 days, and one of 50 that never expires.
select credits.grant(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 100,
         p_kind => 'bonus',
         p_source_key => 'example:welcome-bonus',
         p_expires_at => pg_temp.at('10 days'),
         p_description => 'Welcome bonus') is not null as granted;

select credits.grant(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 50,
         p_kind => 'bonus',
         p_source_key => 'example:loyalty',
         p_description => 'Loyalty bonus') is not null as granted;

-- The same source key again makes nothing: the existing grant's id comes back.
select credits.grant(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 100,
         p_kind => 'bonus',
         p_source_key => 'example:welcome-bonus')
       = (select id from credits.grants where source_key = 'example:welcome-bonus') as same_grant;

select credits.balance('00000000-0000-4000-8000-000000000001', pg_temp.at('1 day')) as balance;

-- 2. Consumption: 30 credits, taken from the grant that expires first.
select credits.consume(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 30,
         p_idempotency_key => 'example:job-1',
         p_description => 'Image generation',
         p_now => pg_temp.at('1 day')) as balance_after;

-- Retried with the same key: the first answer again, nothing spent twice.
select credits.consume(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 30,
         p_idempotency_key => 'example:job-1',
         p_now => pg_temp.at('1 day')) as balance_after;

-- The same key with another amount is refused (CR002), and so is more than the balance (CR001).
select credits.consume(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 31,
         p_idempotency_key => 'example:job-1',
         p_now => pg_temp.at('1 day'));

select credits.consume(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 1000,
         p_idempotency_key => 'example:job-2',
         p_now => pg_temp.at('1 day'));

select kind, amount, remaining, expires_at - pg_temp.at('0 days') as expires_after
  from credits.grants
 where user_id = '00000000-0000-4000-8000-000000000001'
 order by id;

-- 3. Expiry. On day 11 the bonus has expired: the balance no longer counts it, before any job
-- has run; the daily job's expire_due then records it in the ledger.
select credits.balance('00000000-0000-4000-8000-000000000001', pg_temp.at('11 days')) as balance;

select credits.expire_due(pg_temp.at('11 days')) as grants_expired;

select credits.expire_due(pg_temp.at('11 days')) as grants_expired;

-- 4. A payment webhook. The provider's event, turned into Tally's neutral shape (here a paid
-- checkout of the "standard" credit package, $14.90), applied with billing.apply_event. The plans
-- file says what it is worth: 200 credits, expiring 90 days after the payment (p_now).
select billing.apply_event(
         p_provider => 'stripe',
         p_event_id => 'evt_example_checkout',
         p_type => 'checkout_paid',
         p_event => jsonb_build_object(
           'kind', 'checkout_paid',
           'customer', jsonb_build_object(
             'userId', '00000000-0000-4000-8000-000000000001', 'customerRef', 'cus_example',
             'email', null),
           'priceId', 'price_pkg_standard',
           'checkoutRef', 'cs_example',
           'paymentRef', 'pi_example',
           'paymentRefs', jsonb_build_array('pi_example', 'cs_example'),
           'amount', 1490,
           'currency', 'usd',
           'paidAt', pg_temp.at('12 days')),
         p_now => pg_temp.at('12 days')) as result;

-- Delivered again: a duplicate, nothing granted twice.
select billing.apply_event(
         p_provider => 'stripe',
         p_event_id => 'evt_example_checkout',
         p_type => 'checkout_paid',
         p_event => '{"kind": "checkout_paid"}',
         p_now => pg_temp.at('12 days')) as result;

select credits.balance('00000000-0000-4000-8000-000000000001', pg_temp.at('12 days')) as balance;

select kind, amount, remaining, expires_at - pg_temp.at('12 days') as expires_after_payment
  from credits.grants
 where user_id = '00000000-0000-4000-8000-000000000001' and kind = 'package';

-- The user spends 60: from the package, which expires before the loyalty bonus (never).
select credits.consume(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 60,
         p_idempotency_key => 'example:job-3',
         p_now => pg_temp.at('13 days')) as balance_after;

-- 5. A refund of half the payment ($7.45 of $14.90): the payment's grant loses
-- round(200 x 745 / 1490) = 100 of its 140 unspent credits (never more than it has left, so no
-- balance goes negative); the loyalty bonus, not the payment's, keeps its 50.
select billing.apply_event(
         p_provider => 'stripe',
         p_event_id => 'evt_example_refund',
         p_type => 'refund',
         p_event => jsonb_build_object(
           'kind', 'refund',
           'paymentRefs', jsonb_build_array('pi_example'),
           'refundRef', 'ch_example',
           'refundedTotal', 745,
           'amount', null,
           'occurredAt', pg_temp.at('14 days')),
         p_now => pg_temp.at('14 days')) as result;

select credits.balance('00000000-0000-4000-8000-000000000001', pg_temp.at('14 days')) as balance;

select kind, amount, remaining
  from credits.grants
 where user_id = '00000000-0000-4000-8000-000000000001'
 order by id;

-- The ledger: one row per change of balance, append-only, newest last.
select kind, amount, balance_after, description
  from credits.ledger
 where user_id = '00000000-0000-4000-8000-000000000001'
 order by id;

-- What the web UI and GET /api/me/credits show, from one SQL call.
select credits.summary('00000000-0000-4000-8000-000000000001', pg_temp.at('14 days'))
         -> 'balance' as balance;
