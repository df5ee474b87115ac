-- The admin's actions: the credit adjustment, and the admin pages' forms with the message each
-- leaves for the next page.

-- app._set_flash(p_user_id, p_token_hash, p_flash, p_now)
-- Effects: keeps p_flash ({kind, ...}: what an admin action did) as the one message of that
--   session, replacing an earlier one; the next admin page of the session shows it
--   (app._take_flash). Errors: 23503 when the session does not exist. Locks: the session's
--   message row.
create function app._set_flash(p_user_id uuid, p_token_hash bytea, p_flash jsonb,
                               p_now timestamptz default now()) returns void
language sql
as $$
  insert into app.flash_messages (user_id, token_hash, flash, created_at)
  values (p_user_id, p_token_hash, p_flash, p_now)
  on conflict (user_id, token_hash) do update set flash = excluded.flash,
                                                  created_at = excluded.created_at
$$;

-- app._take_flash(p_user_id, p_token_hash, p_now) -> the session's message, or null; removes it,
-- so it is shown once. A message older than 10 minutes is removed unseen. Errors none.
-- Idempotent (a second call finds nothing). Locks: the session's message row.
create function app._take_flash(p_user_id uuid, p_token_hash bytea,
                                p_now timestamptz default now()) returns jsonb
language sql
as $$
  with taken as (
    delete from app.flash_messages f
     where f.user_id = p_user_id and f.token_hash = p_token_hash
    returning f.flash, f.created_at
  )
  select t.flash from taken t where t.created_at > p_now - interval '10 minutes'
$$;

-- app.admin_adjust(p_user_id, p_amount, p_reason, p_key, p_now)
-- Effects: an admin's credit adjustment with a required reason: a positive p_amount is a
--   credits.grant of kind 'adjustment' (source key adjustment:<p_key>, never expires), a
--   negative one a credits.adjust_down. Either way the ledger gets one 'adjustment' entry whose
--   description is the reason.
-- Returns: the user's balance after. Idempotency key: p_key (the form's own key), one for both
--   directions, so a form sent twice adjusts once and answers the first balance-after; sent
--   again with another amount (or sign) it raises CR002 and changes nothing.
-- Errors: 22023 for a zero amount or an empty reason or key; 23503 for an unknown user; CR001
--   when a negative adjustment exceeds the balance; CR002 for a key used with another amount.
-- Locks: the batch advisory lock (shared), then the user's balance row, held while the key is
--   looked up and used (as credits.grant, whose locks it takes first, then adjust_down's).
create function app.admin_adjust(p_user_id uuid, p_amount bigint, p_reason text, p_key text,
                                 p_now timestamptz default now()) returns bigint
language plpgsql
as $$
declare
  v_first bigint;
  v_first_after bigint;
begin
  if coalesce(trim(p_reason), '') = '' then
    perform credits.raise_invalid('an adjustment needs a reason');
  end if;
  if coalesce(p_key, '') = '' then
    perform credits.raise_invalid('an idempotency key is required');
  end if;
  if p_amount is null or p_amount = 0 then
    perform credits.raise_invalid('the adjustment must not be zero');
  end if;
  perform credits.lock_batch_shared();
  perform 1 from credits.balances where user_id = p_user_id for update;
  if not found then
    perform credits.raise_unknown_user(p_user_id);
  end if;
  -- The key's first use, either way: the entry of the grant it made, or of the credits it took.
  select l.amount, l.balance_after into v_first, v_first_after
    from credits.grants g
    join credits.ledger l on l.user_id = g.user_id and l.grant_id = g.id and l.kind = 'adjustment'
   where g.source_key = credits.adjustment_key(p_key) and g.user_id = p_user_id;
  if v_first is null then
    select l.amount, l.balance_after into v_first, v_first_after
      from credits.ledger l
     where l.user_id = p_user_id and l.kind = 'adjustment' and l.idempotency_key = p_key;
  end if;
  if v_first is not null then
    if v_first <> p_amount then
      perform credits.raise_key_reused(p_key, v_first, p_amount);
    end if;
    return v_first_after;
  end if;
  if p_amount > 0 then
    perform credits.grant(p_user_id => p_user_id, p_amount => p_amount, p_kind => 'adjustment',
                          p_source_key => credits.adjustment_key(p_key),
                          p_description => trim(p_reason));
    return credits.balance(p_user_id, p_now);
  end if;
  return credits.adjust_down(p_user_id => p_user_id, p_amount => -p_amount, p_key => p_key,
                             p_reason => p_reason, p_now => p_now);
end
$$;

-- The admin pages' forms: each is the action and the message the page shows next
-- (app._set_flash), in one transaction, so a refused action leaves no message.

-- app.admin_form_adjust(p_admin_id, p_token_hash, p_user_id, p_amount, p_reason, p_key, p_now)
-- app.admin_adjust, then the message {kind: 'adjusted', amount, balance}. Returns the balance
-- after. Errors, idempotency and locks as app.admin_adjust, then the message row.
create function app.admin_form_adjust(p_admin_id uuid, p_token_hash bytea, p_user_id uuid,
                                      p_amount bigint, p_reason text, p_key text,
                                      p_now timestamptz default now()) returns bigint
language plpgsql
as $$
declare
  v_balance bigint := app.admin_adjust(p_user_id => p_user_id, p_amount => p_amount,
                                       p_reason => p_reason, p_key => p_key, p_now => p_now);
begin
  perform app._set_flash(p_admin_id, p_token_hash,
                         jsonb_build_object('kind', 'adjusted', 'amount', p_amount,
                                            'balance', v_balance), p_now);
  return v_balance;
end
$$;

-- app.admin_form_run_daily(p_admin_id, p_token_hash, p_run_id, p_now)
-- The message of a daily run the admin's form has just run (the route CALLs credits.run_daily
-- with trigger 'admin' first: a procedure that commits per batch cannot run inside this
-- function's transaction): {kind: 'daily_run', expired, granted, durationMs, status} of run
-- p_run_id. Returns that message (null for an unknown run, which leaves no message). Effects:
-- the message row (app._set_flash). Errors none. Locks: the message row.
create function app.admin_form_run_daily(p_admin_id uuid, p_token_hash bytea, p_run_id bigint,
                                         p_now timestamptz default now()) returns jsonb
language plpgsql
as $$
declare
  v_flash jsonb;
begin
  select jsonb_build_object('kind', 'daily_run', 'expired', r.expired, 'granted', r.granted,
                            'durationMs', r.duration_ms, 'status', r.status) into v_flash
    from credits.daily_runs r
   where r.id = p_run_id;
  if v_flash is not null then
    perform app._set_flash(p_admin_id, p_token_hash, v_flash, p_now);
  end if;
  return v_flash;
end
$$;

-- app.admin_form_replay(p_admin_id, p_token_hash, p_provider, p_event_id, p_now)
-- billing.replay_event, then the message {kind: 'replayed', eventId, result}. Returns the result.
-- Errors and locks as billing.replay_event, then the message row.
create function app.admin_form_replay(p_admin_id uuid, p_token_hash bytea, p_provider text,
                                      p_event_id text, p_now timestamptz default now())
returns text
language plpgsql
as $$
declare
  v_result text := billing.replay_event(p_provider, p_event_id, p_now);
begin
  perform app._set_flash(p_admin_id, p_token_hash,
                         jsonb_build_object('kind', 'replayed', 'eventId', p_event_id,
                                            'result', v_result), p_now);
  return v_result;
end
$$;
