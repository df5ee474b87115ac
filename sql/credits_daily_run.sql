-- The daily run: expiry, then the monthly grants, for every user, in batches of users that each
-- commit on their own (docs/credit-rules.md#the-daily-run).
--
-- A procedure that commits between batches, rather than the server driving the batches: the run
-- is then the same whoever starts it (pg_cron inside the database, Deno.cron, the HTTP endpoint,
-- an operator's psql), it needs no server process to stay alive for its whole length (pg_cron has
-- none), its progress and resume point are written in the same transaction as each batch's
-- grants (so a crash between two round trips cannot lose or repeat a batch's bookkeeping), and a
-- batch costs no round trip.
--
-- Locks (sql/credits.sql's header): a run holds the daily-run session lock from start to end
-- (one run at a time, across its commits); each batch takes the batch lock SHARED (it waits
-- only for a whole-table expire_due or distribute_monthly, never for a grant), then locks the
-- balance rows of its own users that have something due, in user_id order, before it reads or
-- writes their grants. A grant, consumption or webhook therefore waits for a batch only when its
-- user is in that batch, and for that one batch only.

-- credits._daily_batch(p_after, p_last, p_now) -> (expired, granted, users)
-- Inputs: the users with p_after < user_id <= p_last (one batch); the clock.
-- Effects: for those users: records the releases of due reservations and the expiry of due
--   grants (credits._expire_locked_many), then marks grants spent down to 0 before their expiry
--   as expired (as expire_due, and after the releases for the same reason), then makes their grants of due_monthly_grants(p_now) that are
--   not made yet (credits._make_due_grants).
-- Returns the grants expired, the grants made, and the users whose rows it locked.
-- Idempotency key: each grant's source key; an expired grant is not due again.
-- Errors: whatever a user's rows raise (a constraint, a trigger); the caller retries in pieces.
-- Locks: the batch lock (shared), then the balance rows of the batch's users with due expiries,
--   due reservations or due grants (found by a read without locks), in user_id order (one
--   statement), then their grants. The due grants' keys are checked again after the locks, in a
--   statement that sees every grant committed before them: a grant of one of these users that
--   raced the batch either committed first (its key is filtered out) or waits for the batch's
--   commit (and then finds the batch's grant under its key). Spent-out grants are marked without
--   balance locks (see expire_due).
create function credits._daily_batch(p_after uuid, p_last uuid, p_now timestamptz,
                                     out expired integer, out granted integer,
                                     out users integer)
language plpgsql
set work_mem = '64MB'
-- A plan for each batch's own ranges and arrays: the generic plans that PL/pgSQL settles on after
-- five calls (of _expire_locked_many, _release_due_locked) read every user's due rows; at 100,000
-- users a month-end run took 35 s with them, 11 s without.
set plan_cache_mode = force_custom_plan
as $$
declare
  v_ids regclass := pg_get_serial_sequence('credits.grants', 'id')::regclass;
  v_locking uuid[];
  v_expiring uuid[];
begin
  perform credits.lock_batch_shared();

  drop table if exists pg_temp.distribution_due; -- an earlier piece in this transaction
  create temp table distribution_due on commit drop as
  select d.user_id, nextval(v_ids) as id, d.kind, d.amount, d.expires_at, d.source_key, d.worth,
         d.reference
    from credits.due_monthly_grants(p_now) d
   where d.user_id > p_after and d.user_id <= p_last
     and not coalesce((select true from credits.grants g where g.source_key = d.source_key
                        limit 1), false);

  -- Who has something due: per-user index probes (credits._expiry_due's scalar subqueries, which
  -- the planner cannot turn into joins: a semi-join would read every due grant of every user, a
  -- month-end's million, in each batch), each evaluated once (OFFSET 0 keeps the subquery whole).
  select array_agg(x.user_id order by x.user_id) filter (where x.expiring or x.granted),
         array_agg(x.user_id order by x.user_id) filter (where x.expiring)
    into v_locking, v_expiring
    from (select b.user_id, credits._expiry_due(b.user_id, p_now) as expiring,
                 b.user_id in (select d.user_id from pg_temp.distribution_due d) as granted
            from credits.balances b
           where b.user_id > p_after and b.user_id <= p_last
          offset 0) x;
  -- Their balance rows, in user_id order. What became due or was recorded by someone else since
  -- the probes is settled under these locks: _expire_locked_many reads what is due now.
  perform from credits.balances b
    where b.user_id = any (v_locking)
    order by b.user_id
      for update of b;
  users := coalesce(cardinality(v_locking), 0);

  expired := 0;
  if v_expiring is not null then
    expired := credits._expire_locked_many(v_expiring, p_now);
  end if;
  -- Spent-out grants only after the releases (as expire_due): a grant whose every credit is held
  -- reads as spent out, and a due reservation gives its hold back to it first.
  update credits.grants g
     set expired_at = p_now
   where g.user_id > p_after and g.user_id <= p_last
     and g.expired_at is null and g.remaining = 0 and g.expires_at <= p_now;

  -- Keys taken by grants that committed while the locks were awaited. Keys are probed one index
  -- entry per due grant, here and above: an anti-join would read every grant of every user.
  delete from pg_temp.distribution_due d
   where coalesce((select true from credits.grants g where g.source_key = d.source_key limit 1),
                  false);
  select count(*)::integer into granted from pg_temp.distribution_due;
  if granted > 0 then
    perform credits._make_due_grants(p_now);
  end if;
end
$$;

-- credits._expiry_due(p_user_id, p_now) -> whether the user has a grant or an open reservation
--   due to expire at p_now (not yet recorded). Reads only. The soonest-expiring open grant is
--   read in the grants_spendable index's order, so a probe is one index entry or two; an SQL
--   function with one statement, inlined into its caller.
create function credits._expiry_due(p_user_id uuid, p_now timestamptz) returns boolean
language sql stable
as $$
  select coalesce((select g.expires_at <= p_now from credits.grants g
                    where g.user_id = p_user_id and g.expired_at is null and g.remaining > 0
                    order by g.expires_at nulls last, g.id limit 1), false)
         or coalesce((select true from credits.reservations r
                       where r.user_id = p_user_id and r.status = 'open'
                         and r.expires_at <= p_now limit 1), false)
$$;

-- credits.run_daily(p_now, p_trigger, p_batch_size, expired, granted, duration_ms, run_id)
-- Inputs: the clock; who started it ('scheduler', 'http', 'admin'); users per batch (default
--   2,000: a batch commits in well under a second). The INOUT parameters are answers only: CALL
--   credits.run_daily() (pg_cron) or CALL credits.run_daily(now(), 'http') returns one row.
-- Effects: one credits.daily_runs row, committed first (status 'running'), then, for the users in
--   user_id order, a batch of p_batch_size users at a time, each committed with the row's
--   progress (users_done, batches_done, last_key, expired, granted): credits._daily_batch. A
--   batch that fails is logged (RAISE WARNING with its range and error) and retried once in
--   pieces of a twentieth of it; a piece that fails again is logged and skipped (its users get
--   their grants from the next run), counted in failed_batches, failed_users and errors. Then the
--   expired sign-up and login limits are purged, and the row is finished: 'done', or 'degraded'
--   when more than 5 % of its users were in skipped pieces (then also RAISE WARNING 'daily run
--   degraded ...' and an 'ops.daily_run_degraded' row in credits.ops_events, which the outbound
--   webhooks will send).
--   A run found 'running' while nobody holds the run died part-way (a kill, a restart, a
--   timeout): it is marked 'failed', and when it ran on p_now's UTC day this run continues it
--   from its last_key (resumed_from names it); otherwise this run starts from the first user.
--   When another run holds the run, this one does nothing: it records a 'skipped' row whose note
--   names the running one, and returns at once.
-- Returns (INOUT): this run's expired and granted totals, its duration, its row's id.
-- Idempotency key: the grants' source keys (a repeat grants nothing new); the daily-run lock
--   keeps two runs from doing the work twice.
-- Errors: 22023 for a batch size below 1; 2D000 when CALLed inside a transaction block (before
--   anything is done). A statement timeout or a cancel ends the run (the
--   committed batches stay; the next run continues); so does losing the connection.
-- Locks: the daily-run session lock (never waited for), released on every way out; the locks of
--   credits._daily_batch in each batch's transaction. A procedure, so it must be CALLed outside
--   a transaction block, and has no SET clauses (they forbid COMMIT).
create procedure credits.run_daily(p_now timestamptz default now(),
                                   p_trigger text default 'scheduler',
                                   p_batch_size integer default 2000,
                                   inout expired integer default null,
                                   inout granted integer default null,
                                   inout duration_ms integer default null,
                                   inout run_id bigint default null)
language plpgsql
as $$
declare
  v_started timestamptz := clock_timestamp();
  v_dead credits.daily_runs;
  v_after uuid := '00000000-0000-0000-0000-000000000000'; -- below every generated id
  v_last uuid;
  v_users integer;
  v_batch_users integer;
  v_done record;
  v_piece record;
  v_piece_after uuid;
  v_error text;
  v_run credits.daily_runs;
begin
  if p_batch_size is null or p_batch_size < 1 then
    perform credits.raise_invalid('the batch size must be at least 1');
  end if;
  -- Inside a transaction block COMMIT is refused: fail here, before the session lock is taken
  -- (a lock taken and then stranded by that error would keep every later run skipped).
  commit;
  expired := 0;
  granted := 0;
  if not credits.try_lock_daily_run() then
    insert into credits.daily_runs (run_at, trigger, status, note, users, expired, granted,
                                    finished_at, duration_ms, batch_size)
    values (p_now, p_trigger, 'skipped',
            coalesce('run ' || (select max(r.id) from credits.daily_runs r
                                 where r.status = 'running') || ' was running',
                     'another run was starting'),
            null, 0, 0, clock_timestamp(),
            (extract(epoch from clock_timestamp() - v_started) * 1000)::integer, p_batch_size)
    returning id into run_id;
    duration_ms := (extract(epoch from clock_timestamp() - v_started) * 1000)::integer;
    return;
  end if;

  begin
    -- Holding the run, any 'running' row is a run that died.
    select * into v_dead from credits.daily_runs r
     where r.status = 'running' order by r.id desc limit 1;
    update credits.daily_runs r
       set status = 'failed', finished_at = coalesce(r.finished_at, clock_timestamp()),
           note = 'interrupted after ' || r.users_done || ' of ' || coalesce(r.users, 0)
                  || ' users; continued by a later run'
     where r.status = 'running';
    if v_dead.id is not null
       and (v_dead.run_at at time zone 'UTC')::date = (p_now at time zone 'UTC')::date then
      v_after := coalesce(v_dead.last_key, v_after);
    else
      v_dead := null;
    end if;
    select count(*)::integer into v_users from credits.balances b where b.user_id > v_after;
    insert into credits.daily_runs (run_at, trigger, status, users, expired, granted,
                                    resumed_from, last_key, batch_size)
    values (p_now, p_trigger, 'running', v_users, 0, 0, v_dead.id,
            nullif(v_after, '00000000-0000-0000-0000-000000000000'), p_batch_size)
    returning id into run_id;
  exception when others or query_canceled then
    perform credits.unlock_daily_run();
    raise;
  end;
  commit;

  loop
    begin
      select s.user_id, s.n::integer into v_last, v_batch_users
        from (select x.user_id, row_number() over (order by x.user_id) as n
                from (select b.user_id from credits.balances b where b.user_id > v_after
                       order by b.user_id limit p_batch_size) x) s
       order by s.n desc limit 1;
      exit when v_last is null;
      begin
        select * into v_done from credits._daily_batch(v_after, v_last, p_now);
        expired := expired + v_done.expired;
        granted := granted + v_done.granted;
      exception when others then
        get stacked diagnostics v_error = message_text;
        raise warning 'daily run %: batch of users (%, %] failed, retrying it in pieces: %',
          run_id, v_after, v_last, v_error;
        v_piece_after := v_after;
        for v_piece in
          select count(*)::integer as users,
                 (array_agg(u.user_id order by u.user_id))[1] as first_key,
                 (array_agg(u.user_id order by u.user_id desc))[1] as last_key
            from (select b.user_id,
                         (row_number() over (order by b.user_id) - 1)
                           / greatest(1, ceil(p_batch_size / 20.0)::integer) as piece
                    from credits.balances b
                   where b.user_id > v_after and b.user_id <= v_last) u
           group by u.piece order by u.piece
        loop
          begin
            select * into v_done from credits._daily_batch(v_piece_after, v_piece.last_key, p_now);
            expired := expired + v_done.expired;
            granted := granted + v_done.granted;
          exception when others then
            get stacked diagnostics v_error = message_text;
            raise warning 'daily run %: users [%, %] skipped (% users): %',
              run_id, v_piece.first_key, v_piece.last_key, v_piece.users, v_error;
            update credits.daily_runs r
               set failed_batches = r.failed_batches + 1,
                   failed_users = r.failed_users + v_piece.users,
                   errors = r.errors || jsonb_build_array(jsonb_build_object(
                              'range', jsonb_build_array(v_piece.first_key, v_piece.last_key),
                              'users', v_piece.users, 'error', v_error))
             where r.id = run_id;
          end;
          v_piece_after := v_piece.last_key;
        end loop;
      end;
      update credits.daily_runs r
         set users_done = r.users_done + v_batch_users, batches_done = r.batches_done + 1,
             last_key = v_last, expired = run_daily.expired, granted = run_daily.granted
       where r.id = run_id;
      v_after := v_last;
    exception when others or query_canceled then
      perform credits.unlock_daily_run();
      raise;
    end;
    commit;
  end loop;

  begin
    perform app.purge_login_and_signup_limits(p_now);
    duration_ms := (extract(epoch from clock_timestamp() - v_started) * 1000)::integer;
    update credits.daily_runs r
       set status = case when r.failed_users * 100 > 5 * coalesce(r.users, 0) then 'degraded'
                         else 'done' end,
           finished_at = clock_timestamp(), duration_ms = run_daily.duration_ms
     where r.id = run_id
    returning * into v_run;
    if v_run.status = 'degraded' then
      raise warning 'daily run degraded: run %, % of % users in failed batches (% batches)',
        run_id, v_run.failed_users, v_run.users, v_run.failed_batches;
      insert into credits.ops_events (kind, payload)
      values ('ops.daily_run_degraded',
              jsonb_build_object('runId', run_id, 'runAt', p_now, 'users', v_run.users,
                                 'failedUsers', v_run.failed_users,
                                 'failedBatches', v_run.failed_batches,
                                 'errors', v_run.errors));
    end if;
  exception when others or query_canceled then
    perform credits.unlock_daily_run();
    raise;
  end;
  commit; -- the finished row is visible before the next run can take the lock
  perform credits.unlock_daily_run();
end
$$;
