-- Locks: the one home of every advisory lock Tally takes, one named function each (as pgmq's
-- acquire_queue_lock). No other file calls pg_advisory_* or spells a lock number. The numbers
-- never change: servers of two versions running side by side during a deploy must take the same
-- locks (tests/sql/keys_test.ts checks them).
--
-- The lock numbers, 7461021000 + n:
--   7461021000  the migration lock, a session lock taken by db/migrate.ts before any function
--               exists (so it is written there, not here)
--   7461021001  the batch lock (credits.batch_lock_key): batches take it exclusively, every single
--               grant shared (the order of sql/credits.sql's header)
--   7461021002  the catalogue lock (billing.lock_catalogue): plans-file loads, one at a time
--   7461021003  the seed of the event-reference locks (billing._lock_refs)
--   7461021005  the seed of the event-key locks (billing.lock_event)
--   (1, hash)   the sign-up address locks (app.lock_signup_address), in the two-key space
-- All are transaction locks: they end with the transaction that took them. The functions are SQL
-- with one statement, so that PostgreSQL inlines them into their callers.

-- The key of the advisory lock that batches (expiry, distribution, daily runs) hold.
create function credits.batch_lock_key() returns bigint
language sql immutable parallel safe
as $$ select 7461021001::bigint $$;

-- credits.lock_batch()
-- Effects: takes the batch lock exclusively (credits.expire_due, credits.distribute_monthly,
--   credits.run_daily_counts): no grant starts and no other batch runs until this transaction
--   ends. Returns nothing. Errors none. Locks: that one, waiting for every holder.
create function credits.lock_batch() returns void
language sql
as $$ select pg_advisory_xact_lock(credits.batch_lock_key()) $$;

-- credits.lock_batch_shared()
-- Effects: takes the batch lock in shared mode, as every grant and claw-back does before it locks
--   a balance row: it waits for a running batch, never for another grant. Returns nothing.
--   Errors none. Locks: that one.
create function credits.lock_batch_shared() returns void
language sql
as $$ select pg_advisory_xact_lock_shared(credits.batch_lock_key()) $$;

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
