-- PLACEHOLDER until the lead's sql/credits_reservations.sql lands on main (which defines the real
-- credits.reserved and deletes this file): api.put_customer and api.customer call it by name.

-- credits.reserved(p_user_id, p_now)
-- Returns: the credits held by the user's open reservations at p_now; 0 here, since nothing can
--   hold credits yet. Effects, errors and locks none.
create function credits.reserved(p_user_id uuid, p_now timestamptz default now()) returns bigint
language sql stable
as $$ select 0::bigint $$;
