-- migrate:up

-- Lookups by a provider's reference, with the reference first in the key. A connection keeps the
-- generic plan it makes for a statement after five calls, with the table sizes and statistics of
-- that moment: on a young database, before autovacuum has analysed anything. With the key
-- ordered (provider, ref), such a plan took "provider = $1" for the selective part and read every
-- reference of the provider on each webhook. With the reference first, the references are the
-- only way into the index, whatever the statistics say.
alter table billing.payment_refs
  drop constraint payment_refs_pkey,
  add primary key (ref, provider);

-- The references of the inbox's failed events, so that an applied event finds the failed events
-- it may unblock by its own references (billing._retry_related) with an index probe each. It
-- replaces a GIN index on webhook_events.refs, for which a plan made on a young database read
-- every failed event through the other partial index instead. Rows exist exactly while their
-- event is failed (billing.apply_event and billing._attempt keep them).
create table billing.failed_event_refs (
  ref      text not null,
  provider text not null,
  event_id text not null,
  primary key (ref, provider, event_id),
  foreign key (provider, event_id) references billing.webhook_events (provider, event_id)
    on delete cascade
);
insert into billing.failed_event_refs (ref, provider, event_id)
select distinct r, e.provider, e.event_id
  from billing.webhook_events e
 cross join unnest(e.refs) r
 where e.status = 'failed';
drop index billing.webhook_events_failed_refs;

-- migrate:down

create index webhook_events_failed_refs on billing.webhook_events using gin (refs)
  where status = 'failed';
drop table billing.failed_event_refs;
alter table billing.payment_refs
  drop constraint payment_refs_pkey,
  add primary key (provider, ref);
