-- The errors of Tally's SQL API, each with its SQLSTATE. A refused call changes nothing.
-- Run by tests/examples_test.ts on a fresh database; its output is errors.out.
insert into app.users (id, email)
values ('00000000-0000-4000-8000-000000000001', 'ada@example.com'),
       ('00000000-0000-4000-8000-000000000002', 'bob@example.com');

-- 22023: a non-positive amount, an unknown kind, an empty source key.
select credits.grant(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 0,
         p_kind => 'bonus',
         p_source_key => 'example:zero');

select credits.grant(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 10,
         p_kind => 'gift',
         p_source_key => 'example:gift');

select credits.consume(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => -5,
         p_idempotency_key => 'example:negative');

-- 23503: an unknown user.
select credits.grant(
         p_user_id => '00000000-0000-4000-8000-00000000dead',
         p_amount => 10,
         p_kind => 'bonus',
         p_source_key => 'example:nobody');

-- 23505: a source key that another user's grant already has.
select credits.grant(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 10,
         p_kind => 'bonus',
         p_source_key => 'example:taken') is not null as granted;

select credits.grant(
         p_user_id => '00000000-0000-4000-8000-000000000002',
         p_amount => 10,
         p_kind => 'bonus',
         p_source_key => 'example:taken');

-- CR001: more than the balance. Nothing is recorded, so the key may succeed after a top-up.
select credits.consume(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 11,
         p_idempotency_key => 'example:big-job');

select credits.grant(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 5,
         p_kind => 'bonus',
         p_source_key => 'example:top-up') is not null as granted;

select credits.consume(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 11,
         p_idempotency_key => 'example:big-job') as balance_after;

-- CR002: that key again with another amount.
select credits.consume(
         p_user_id => '00000000-0000-4000-8000-000000000001',
         p_amount => 12,
         p_idempotency_key => 'example:big-job');

-- billing.apply_event: 22023 for an unknown provider or an event that is not a JSON object.
select billing.apply_event(
         p_provider => 'paypal',
         p_event_id => 'evt_example',
         p_type => 'refund',
         p_event => '{}');

select billing.apply_event(
         p_provider => 'stripe',
         p_event_id => 'evt_example',
         p_type => 'refund',
         p_event => '[]');

-- Only the two grants and the one consumption that succeeded changed a balance.
select email, credits.balance(id) as balance
  from app.users
 order by email;
