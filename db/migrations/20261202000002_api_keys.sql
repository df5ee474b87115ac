-- migrate:up

-- Issue 10, the server-to-server API's keys (docs/api.md#keys). A key is never stored: only the
-- SHA-256 of its whole text, looked up by equality, so no comparison of secrets can leak timing.
-- prefix is the start of the key (tally_sk_ and four more characters), for telling keys apart in
-- lists. Scopes are stored in one canonical spelling: {read} or {read,write}.
create table app.api_keys (
  id           bigint generated always as identity primary key,
  name         text not null check (char_length(name) between 1 and 100),
  scopes       text[] not null check (scopes in ('{read}', '{read,write}')),
  key_hash     bytea not null unique check (octet_length(key_hash) = 32),
  prefix       text not null check (prefix <> ''),
  created_at   timestamptz not null,
  last_used_at timestamptz,
  revoked_at   timestamptz,
  -- The admin who made it; null for `deno task api-key create`, or once that account is gone.
  created_by   uuid references app.users (id) on delete set null
);

-- migrate:down
drop table app.api_keys;
