-- Locks: the one home of every advisory lock Tally takes, one named function each (as pgmq's
-- acquire_queue_lock). No other file calls pg_advisory_* or spells a lock number. The numbers
-- never change: servers of two versions running side by side during a deploy must take the same
-- locks (tests/sql/keys_test.ts checks them).
--
-- The lock numbers, 7461021000 + n:
--   7461021000  the migration lock, a session lock taken by db/migrate.ts before any function
--               exists (so it is written there, not here)
--   7461021001  the batch lock (credits.batch_lock_key): whole-table batches take it exclusively,
--               every single grant and every batch of the daily run shared (the order of
--               sql/credits.sql's header)
--   7461021002  the catalogue lock (billing.lock_catalogue): plans-file loads, one at a time
--   7461021003  the seed of the event-reference locks (billing._lock_refs)
--   7461021005  the seed of the event-key locks (billing.lock_event)
--   7461021006  the daily-run lock (credits.try_lock_daily_run), a SESSION lock: one run at a time
--   (1, hash)   the sign-up address locks (app.lock_signup_address), in the two-key space
-- All but the daily-run lock are transaction locks: they end with the transaction that took them.
-- The functions are SQL with one statement, so that PostgreSQL inlines them into their callers.

-- The key of the advisory lock that batches (expiry, distribution, daily runs) hold.
create function credits.batch_lock_key() returns bigint
language sql immutable parallel safe
as $$ select 7461021001::bigint $$;

-- credits.lock_batch()
-- Effects: takes the batch lock exclusively (credits.expire_due and credits.distribute_monthly,
--   the whole-table forms): no grant starts and no other batch runs until this transaction
--   ends. Returns nothing. Errors none. Locks: that one, waiting for every holder.
create function credits.lock_batch() returns void
language sql
as $$ select pg_advisory_xact_lock(credits.batch_lock_key()) $$;

-- credits.lock_batch_shared()
-- Effects: takes the batch lock in shared mode, as every grant and claw-back does before it locks
--   a balance row, and every batch of the daily run (credits._daily_batch) before it locks its
--   users' rows: it waits for a whole-table batch, never for another grant or a daily batch.
--   Returns nothing. Errors none. Locks: that one.
create function credits.lock_batch_shared() returns void
language sql
as $$ select pg_advisory_xact_lock_shared(credits.batch_lock_key()) $$;

-- credits.try_lock_daily_run() -> whether this session now holds the daily-run lock.
-- Effects: tries the session-level lock that one daily run holds from its start to its end
--   (credits.run_daily), across the commits of its batches; never waits. A session that dies
--   releases it, so a run killed part-way leaves the lock free for the run that continues it.
--   Errors none. Locks: that one, held until credits.unlock_daily_run or the session's end.
create function credits.try_lock_daily_run() returns boolean
language sql
as $$ select pg_try_advisory_lock(7461021006) $$;

-- credits.unlock_daily_run() -> whether this session held the daily-run lock.
-- Effects: releases it (session locks outlive transactions, so a run releases it on every way
--   out, errors included). Errors none.
create function credits.unlock_daily_run() returns boolean
language sql
as $$ select pg_advisory_unlock(7461021006) $$;

-- credits.daily_run_held() -> whether some session holds the daily-run lock (a run is going).
-- Reads only (pg_locks; an advisory bigint key is classid (high half) and objid (low half), with
-- objsubid 1).
create function credits.daily_run_held() returns boolean
language sql stable
as $$
  select exists (select from pg_locks l
                  where l.locktype = 'advisory' and l.granted and l.objsubid = 1
                    and l.database = (select oid from pg_database where datname = current_database())
                    and (l.classid::bigint << 32) + l.objid::bigint = 7461021006)
$$;

-- billing.lock_catalogue()
-- Effects: takes the catalogue lock, so concurrent start-ups load the plans file one at a time
--   (billing.load_plans). Returns nothing. Errors none. Locks: that one.
create function billing.lock_catalogue() returns void
language sql
as $$ select pg_advisory_xact_lock(7461021002) $$;

-- billing.lock_event(p_provider, p_event_id)
-- Effects: takes the lock of one event's key (provider, event ID), so a concurrent delivery of
--   the same event waits until the first commits (billing.apply_event). Returns nothing. Errors
--   none. Locks: that one, first of an event's locks (the order of sql/billing_events.sql).
create function billing.lock_event(p_provider text, p_event_id text) returns void
language sql
as $$
  select pg_advisory_xact_lock(hashtextextended(p_provider || ':' || p_event_id, 7461021005))
$$;

-- billing._lock_refs(p_provider, p_refs)
-- Effects: takes a transaction advisory lock per reference (billing._event_refs), in sorted order
--   (no deadlock among events): events about one customer, subscription or payment apply one
--   after another. Returns nothing. Errors none. Locks: those, after the event's key lock.
-- plpgsql so that its plan is kept for the session.
create function billing._lock_refs(p_provider text, p_refs text[]) returns void
language plpgsql
as $$
begin
  perform pg_advisory_xact_lock(k)
     from (select distinct hashtextextended(p_provider || ':' || r, 7461021003) as k
             from unnest(p_refs) r
            order by 1) keys;
end
$$;

-- app.lock_signup_address(p_address)
-- Effects: takes the lock of one client address (key (1, hashtext(host(address)))), so parallel
--   sign-ups from it are counted one after the other (app.signup). Returns nothing. Errors none.
-- Locks: that one, before the new user's rows.
create function app.lock_signup_address(p_address inet) returns void
language sql
as $$ select pg_advisory_xact_lock(1, hashtext(host(p_address))) $$;
