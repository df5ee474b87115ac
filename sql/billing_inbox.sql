-- The inbox (billing.webhook_events): an event run and recorded once per (provider, event ID),
-- failed events retried when a related one is processed, replayed by an admin, and listed.
-- Lock order: sql/billing_events.sql.

-- billing._run(p_provider, p_event, p_refs, p_now)
-- Effects: applies an event (billing._apply) in a sub-transaction, after locking its references
--   (_lock_refs). Writes nothing to the inbox: the callers record the outcome.
-- Returns status 'processed' (and the user it concerned), 'ignored' (a kind Tally does not act
--   on), or 'failed' with the error text: a business failure rolls the sub-transaction back, so
--   nothing of it stays. A transient fault (deadlock, serialization, shutdown, lost connection)
--   is raised, so that the whole transaction rolls back and the provider retries.
-- Idempotency: the handler's keys. Locks: the event's references (billing._lock_refs), then the
--   handler's.
create function billing._run(p_provider billing.provider,
                             p_event jsonb, p_refs text[], p_now timestamptz,
                             out status text, out user_id uuid, out error text)
language plpgsql
as $$
declare
  v_state text;
begin
  if p_event ->> 'kind' = 'ignored' then
    status := 'ignored';
    return;
  end if;
  perform billing._lock_refs(p_provider, p_refs);
  begin
    user_id := billing._apply(p_provider, p_event, p_now);
    status := 'processed';
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, error = message_text;
    if v_state in ('40001', '40P01') or left(v_state, 2) in ('08', '53', '57') then
      raise;
    end if;
    status := 'failed';
    user_id := null;
  end;
end
$$;

-- billing._retry_related(p_provider, p_event_id, p_refs, p_now)
-- Effects: after an event was processed, attempts again every other failed event of the provider
--   that shares a reference with it (the payment whose checkout named its user, the refund whose
--   payment arrived), oldest first, skipping rows another transaction holds.
-- Returns nothing. Errors: only transient faults (billing._run raises them). Idempotent: a
--   retried event that is processed leaves the failed set.
-- Locks: each related inbox row (skipping the locked ones), then that event's locks (_attempt).
-- Cost: one probe of billing.failed_event_refs per reference when nothing is related (the usual
--   case); the inbox is read only for the events found there.
create function billing._retry_related(p_provider billing.provider, p_event_id text, p_refs text[],
                                       p_now timestamptz) returns void
language plpgsql
as $$
declare
  v_related text[];
  v_other record;
begin
  select array_agg(distinct f.event_id) into v_related
    from billing.failed_event_refs f
   where f.ref = any (p_refs) and f.provider = p_provider and f.event_id <> p_event_id;
  if v_related is null then
    return;
  end if;
  -- A loop, not a set: each retry is a whole application with its own sub-transaction.
  for v_other in
    select e.event_id from billing.webhook_events e
     where e.provider = p_provider and e.event_id = any (v_related) and e.status = 'failed'
     order by e.received_at
       for update skip locked
  loop
    perform billing._attempt(p_provider, v_other.event_id, p_now);
  end loop;
end
$$;

-- billing._attempt(p_provider, p_event_id, p_now)
-- Inputs: an inbox row that the caller has locked (a failed event delivered again, replayed, or
--   retried because a related event was processed).
-- Effects: runs the stored event (billing._run) and records the outcome on the row (status,
--   error, attempts, times); when processed, retries the related failed events.
-- Returns 'processed', 'ignored' or 'failed'. Errors: only transient faults (billing._run).
-- Idempotency: the handler's keys. Locks: the caller's lock on the row, then see the header.
create function billing._attempt(p_provider billing.provider, p_event_id text, p_now timestamptz)
returns text
language plpgsql
as $$
declare
  v_event jsonb;
  v_refs text[];
  v_outcome record;
begin
  select e.event, e.refs into v_event, v_refs from billing.webhook_events e
   where e.provider = p_provider and e.event_id = p_event_id;
  select * into v_outcome from billing._run(p_provider, v_event, v_refs, p_now);
  update billing.webhook_events
     set status = v_outcome.status, user_id = coalesce(v_outcome.user_id, user_id),
         error = v_outcome.error, attempts = attempts + 1, last_attempt_at = now(),
         processed_at = case when v_outcome.status = 'failed' then processed_at else now() end
   where provider = p_provider and event_id = p_event_id;
  if v_outcome.status <> 'failed' then
    delete from billing.failed_event_refs f
     where f.ref = any (v_refs) and f.provider = p_provider and f.event_id = p_event_id;
  end if;
  if v_outcome.status = 'processed' then
    perform billing._retry_related(p_provider, p_event_id, v_refs, p_now);
  end if;
  return v_outcome.status;
end
$$;

-- billing.apply_event(p_provider, p_event_id, p_type, p_event, p_now)
-- Inputs: the provider ('stripe' | 'creem'), its event ID and type, the event in the neutral
--   shape (providers/billing_event.ts), the clock.
-- Effects, in the caller's one transaction: a new event is run (billing._run) and then recorded in
--   billing.webhook_events, keyed by (provider, event ID), with its outcome: one write of the
--   inbox row. A repeat of a processed or ignored event changes nothing; a repeat of a failed one
--   attempts it again (billing._attempt).
-- Returns 'processed', 'duplicate', 'ignored' or 'failed'.
-- Idempotency key: (p_provider, p_event_id). Deliveries of one event take a transaction advisory
--   lock on that key first, so a concurrent duplicate waits until the first commits, then finds
--   its row and answers 'duplicate'.
-- Errors: 22023 for an unknown provider, an empty event ID or an event that is not an object.
-- Locks: the event key's advisory lock, the inbox row if it exists, then see the header.
create function billing.apply_event(p_provider text, p_event_id text, p_type text, p_event jsonb,
                                    p_now timestamptz default now())
returns text
language plpgsql
as $$
declare
  v_status text;
  v_refs text[];
  v_outcome record;
begin
  if p_provider is null or p_provider not in ('stripe', 'creem') then
    perform credits.raise_invalid(format('unknown provider %L', p_provider));
  end if;
  if p_event_id is null or p_event_id = '' or jsonb_typeof(p_event) is distinct from 'object' then
    perform credits.raise_invalid('an event needs an ID and an object');
  end if;
  perform billing.lock_event(p_provider, p_event_id);
  select e.status into v_status from billing.webhook_events e
   where e.provider = p_provider and e.event_id = p_event_id
     for update;
  if found then
    if v_status <> 'failed' then
      return 'duplicate';
    end if;
    return billing._attempt(p_provider, p_event_id, p_now);
  end if;

  v_refs := billing._event_refs(p_event);
  select * into v_outcome from billing._run(p_provider, p_event, v_refs, p_now);
  insert into billing.webhook_events (provider, event_id, type, event, status, refs, user_id,
                                      error, attempts, received_at, last_attempt_at,
                                      processed_at)
  values (p_provider, p_event_id, coalesce(p_type, ''), p_event, v_outcome.status, v_refs,
          v_outcome.user_id, v_outcome.error, 1, now(), now(),
          case when v_outcome.status = 'failed' then null else now() end);
  if v_outcome.status = 'failed' then
    insert into billing.failed_event_refs (ref, provider, event_id)
    select distinct r, p_provider, p_event_id from unnest(v_refs) r;
  elsif v_outcome.status = 'processed' then
    perform billing._retry_related(p_provider, p_event_id, v_refs, p_now);
  end if;
  return v_outcome.status;
end
$$;

-- billing.replay_event(p_provider, p_event_id, p_now)
-- Effects: attempts a failed event of the inbox again, from its stored neutral shape (after the
--   cause was fixed, e.g. the missing price loaded with billing.load_plans).
-- Returns 'processed' or 'failed'; 'duplicate' for an event already processed or ignored.
-- Idempotent: a processed event is never applied twice. Errors: 23503 for an unknown event.
-- Locks: the inbox row (a concurrent replay waits, then answers 'duplicate'), then see the header.
create function billing.replay_event(p_provider text, p_event_id text,
                                     p_now timestamptz default now())
returns text
language plpgsql
as $$
declare
  v_status text;
begin
  select e.status into v_status from billing.webhook_events e
   where e.provider = p_provider and e.event_id = p_event_id
     for update;
  if not found then
    raise exception using errcode = '23503',
      message = format('no %s event %L in the inbox', p_provider, p_event_id);
  end if;
  if v_status <> 'failed' then
    return 'duplicate';
  end if;
  return billing._attempt(p_provider, p_event_id, p_now);
end
$$;

-- billing.webhook_inbox(p_status, p_limit)
-- Returns the newest inbox rows (all statuses when p_status is null) for the admin, as JSON.
-- Reads only.
create function billing.webhook_inbox(p_status text default 'failed', p_limit integer default 50)
returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
           'provider', e.provider, 'eventId', e.event_id, 'type', e.type, 'status', e.status,
           'error', e.error, 'attempts', e.attempts, 'userId', e.user_id,
           'receivedAt', e.received_at, 'lastAttemptAt', e.last_attempt_at,
           'processedAt', e.processed_at, 'event', e.event)
         order by e.received_at desc), '[]')
    from (select * from billing.webhook_events e
           where p_status is null or e.status = p_status
           order by e.received_at desc
           limit greatest(1, least(p_limit, 500))) e
$$;
