-- The server-to-server API's keys (app.api_keys, docs/api.md#keys): made and revoked by an admin
-- (routes/api/admin.ts, routes/admin/api-keys.tsx) or `deno task api-key create`, checked on every
-- /api/v1 request (middlewares/api_key.ts). The key text never reaches the database: the
-- TypeScript side generates it and passes its SHA-256 (utils/api_keys.ts).

-- app._api_key_json(k) -> {id, name, scopes, prefix, createdAt, lastUsedAt, revokedAt}: one key as
-- the lists show it. Never the hash.
create function app._api_key_json(k app.api_keys) returns jsonb
language sql stable
as $$
  select jsonb_build_object('id', k.id, 'name', k.name, 'scopes', to_jsonb(k.scopes),
                            'prefix', k.prefix, 'createdAt', app.iso(k.created_at),
                            'lastUsedAt', app.iso(k.last_used_at),
                            'revokedAt', app.iso(k.revoked_at))
$$;

-- app.create_api_key(p_name, p_scopes, p_key_hash, p_prefix, p_created_by, p_now)
-- Inputs: p_name (trimmed, 1 to 100 characters); p_scopes, a set of 'read' and 'write' that holds
--   'read' (order and repeats do not matter: stored as {read} or {read,write}); p_key_hash, the
--   SHA-256 (32 bytes) of the whole key; p_prefix, the key's first characters, shown in lists;
--   p_created_by, the admin's user id, or null (the command line).
-- Effects: inserts one app.api_keys row, created at p_now, never used, not revoked.
-- Returns: {id, name, scopes, createdAt}. Idempotency key: none; every call makes a key (the
--   caller generates a new key each time; the same hash twice is 23505).
-- Errors: 22023 for an empty or too long name, scopes that are not {read} or {read, write}, a
--   hash that is not 32 bytes or an empty prefix; 23505 for a hash already stored; 23503 for an
--   unknown p_created_by.
-- Locks: none beyond the inserted row.
create function app.create_api_key(p_name text, p_scopes text[], p_key_hash bytea, p_prefix text,
                                   p_created_by uuid default null,
                                   p_now timestamptz default now()) returns jsonb
language plpgsql
as $$
declare
  v_name text := trim(coalesce(p_name, ''));
  v_scopes text[] := (select array_agg(distinct s order by s) from unnest(p_scopes) s);
  v_key app.api_keys;
begin
  if char_length(v_name) not between 1 and 100 then
    perform credits.raise_invalid('a key name is 1 to 100 characters');
  end if;
  if v_scopes is null or v_scopes not in ('{read}', '{read,write}') then
    perform credits.raise_invalid('scopes are ["read"] or ["read", "write"]');
  end if;
  if p_key_hash is null or octet_length(p_key_hash) <> 32 then
    perform credits.raise_invalid('the key hash is the 32 bytes of a SHA-256');
  end if;
  if coalesce(p_prefix, '') = '' then
    perform credits.raise_invalid('the key prefix is required');
  end if;
  insert into app.api_keys (name, scopes, key_hash, prefix, created_at, created_by)
  values (v_name, v_scopes, p_key_hash, p_prefix, p_now, p_created_by)
  returning * into v_key;
  return jsonb_build_object('id', v_key.id, 'name', v_key.name, 'scopes', to_jsonb(v_key.scopes),
                            'createdAt', app.iso(v_key.created_at));
end
$$;

-- app.api_keys() -> jsonb array of every key (app._api_key_json), newest first, revoked ones
-- included (with revokedAt). Effects none. Errors none. Locks none.
create function app.api_keys() returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(app._api_key_json(k) order by k.id desc), '[]'::jsonb)
    from app.api_keys k
$$;

-- app.revoke_api_key(p_id, p_now)
-- Effects: marks the key revoked at p_now; app.check_api_keys no longer returns it, so the next
--   request with it (on any server: nothing caches keys) answers 401.
-- Returns: the key as app.api_keys lists it. Idempotent: revoking again changes nothing and keeps
--   the first revokedAt.
-- Errors: CR007 for an unknown id. Locks: the key's row.
create function app.revoke_api_key(p_id bigint, p_now timestamptz default now()) returns jsonb
language plpgsql
as $$
declare
  v_key app.api_keys;
begin
  update app.api_keys k set revoked_at = coalesce(k.revoked_at, p_now)
   where k.id = p_id
  returning * into v_key;
  if not found then
    raise exception using errcode = 'CR007', message = format('no API key %s', p_id);
  end if;
  return app._api_key_json(v_key);
end
$$;

-- app.check_api_keys(p_hashes, p_now) -> (key_hash, id, scopes), one row per valid key
-- Inputs: the SHA-256 of each presented key (several requests' keys at once: the middleware
--   batches the checks that arrive together); repeats and unknown hashes are fine.
-- Returns: the keys among them that exist and are not revoked, in no order (the caller matches
--   rows to requests by key_hash).
-- Effects: sets last_used_at to p_now on the returned keys whose last_used_at is null or older
--   than a minute, so that a busy key writes its row at most once a minute, not on every request.
--   The minute is checked again on the row's newest version when several calls touch one key at
--   once, so they write it once.
-- Errors none. Idempotency: repeating the call within the minute changes nothing.
-- Locks: the rows it touches (at most once a minute per key), in the order the update meets them.
create function app.check_api_keys(p_hashes bytea[], p_now timestamptz default now())
returns table (key_hash bytea, id bigint, scopes text[])
language sql
as $$
  with valid as (
    select k.id, k.key_hash, k.scopes
      from app.api_keys k
     where k.key_hash = any (p_hashes) and k.revoked_at is null
  ), touched as (
    update app.api_keys k set last_used_at = p_now
      from valid v
     where k.id = v.id
       and (k.last_used_at is null or k.last_used_at < p_now - interval '1 minute')
    returning k.id
  )
  select v.key_hash, v.id, v.scopes from valid v
$$;

-- The admin page's reads and form (routes/admin/api-keys.tsx), each with the session's message
-- (app._take_flash, app._set_flash) as the other admin pages.

-- app.page_admin_api_keys(p_admin_id, p_token_hash, p_now) -> {balance, keys: app.api_keys(),
-- flash: the session's message or null}. Effects: takes the session's message; reads otherwise.
create function app.page_admin_api_keys(p_admin_id uuid, p_token_hash bytea,
                                        p_now timestamptz default now()) returns jsonb
language sql
as $$
  select app.page_nav(p_admin_id, p_now)
         || jsonb_build_object('keys', app.api_keys(),
                               'flash', app._take_flash(p_admin_id, p_token_hash, p_now))
$$;

-- app.admin_form_revoke_api_key(p_admin_id, p_token_hash, p_id, p_now)
-- app.revoke_api_key, then the message {kind: 'api_key_revoked', id, name}. Returns the key as
-- listed. Errors and idempotency as app.revoke_api_key; locks the key's row, then the message row.
create function app.admin_form_revoke_api_key(p_admin_id uuid, p_token_hash bytea, p_id bigint,
                                              p_now timestamptz default now()) returns jsonb
language plpgsql
as $$
declare
  v_key jsonb := app.revoke_api_key(p_id, p_now);
begin
  perform app._set_flash(p_admin_id, p_token_hash,
                         jsonb_build_object('kind', 'api_key_revoked', 'id', v_key -> 'id',
                                            'name', v_key -> 'name'), p_now);
  return v_key;
end
$$;
