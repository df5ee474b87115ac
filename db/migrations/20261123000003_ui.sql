-- migrate:up

-- The web UI's needs of the schema.

-- The dashboard's chart sums a user's usage of the last 30 days: with this index that is an
-- index-only scan of those entries instead of a walk through the user's whole ledger.
create index ledger_usage_by_time on credits.ledger (user_id, created_at) include (amount)
  where kind = 'usage';

-- migrate:down

drop index credits.ledger_usage_by_time;
