-- migrate:up

-- When the user proved the address is theirs (the emailed link, or `deno task users verify EMAIL`
-- on the server); null until then. Only a verified address makes an ADMIN_EMAILS account an admin
-- and lets a payment be matched to the account by email alone. Adding a nullable column without a
-- default changes the catalogue only: the table is not rewritten.
alter table app.users add column email_verified_at timestamptz;

-- The admin pages' one-time messages ("Adjusted by +25 ..."), kept by the server for the session
-- that acted, shown once by the page it is sent back to, never read from the URL. A message goes
-- with its session.
create table app.flash_messages (
  user_id    uuid not null,
  token_hash bytea not null,
  flash      jsonb not null,
  created_at timestamptz not null default now(),
  primary key (user_id, token_hash),
  foreign key (user_id, token_hash) references app.sessions (user_id, token_hash) on delete cascade
);

-- migrate:down

drop table app.flash_messages;
alter table app.users drop column email_verified_at;
