-- Table guards: the ledger is append-only, and every user has a balance row.

create function credits.refuse_ledger_change() returns trigger
language plpgsql
as $$
begin
  raise exception using errcode = '42501',
    message = 'credits.ledger is append-only: entries are never updated, deleted or truncated';
end
$$;

drop trigger if exists ledger_append_only on credits.ledger;
create trigger ledger_append_only
  before update or delete or truncate on credits.ledger
  for each statement execute function credits.refuse_ledger_change();

-- A user inserted by any path (sign-up, an admin, a test's plain INSERT) gets a balance row,
-- which is the lock that every change of that user's credits takes. Statement-level, so a bulk
-- insert of users is one set-based insert here.
create function credits.open_balances() returns trigger
language plpgsql
as $$
begin
  insert into credits.balances (user_id) select id from new_users on conflict do nothing;
  return null;
end
$$;

drop trigger if exists users_open_balances on app.users;
create trigger users_open_balances
  after insert on app.users
  referencing new table as new_users
  for each statement execute function credits.open_balances();
