-- migrate:up

-- The web UI's needs of the schema.

-- An admin's negative adjustment (credits.adjust_down) is idempotent through the key of the form
-- that submitted it, kept in the entry's reference column: one entry per user and key.
create unique index ledger_adjustment_key on credits.ledger (user_id, reference)
  where kind = 'adjustment' and reference is not null;

-- The dashboard's chart sums a user's usage of the last 30 days: with this index that is an
-- index-only scan of those entries instead of a walk through the user's whole ledger.
create index ledger_usage_by_time on credits.ledger (user_id, created_at) include (amount)
  where kind = 'usage';

-- migrate:down

drop index credits.ledger_usage_by_time;
drop index credits.ledger_adjustment_key;
