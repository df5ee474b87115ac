-- The balance at any instant, from the ledger: GET /api/v1/customers/{externalId}/balance?at=.
-- docs/credit-rules.md#point-in-time-balance.

-- credits.balance_at(p_user_id, p_at, p_now)
-- Inputs: a user; the instant asked about; the clock (what "now" is).
-- Returns: the balance and the reserved credits at p_at.
--   p_at >= p_now: today's credits less those that will have expired by p_at, holds that will
--   have ended by then counted back (credits.balance and credits.reserved at p_at).
--   p_at < p_now: exactly what the ledger says held at p_at. Every entry counts from its
--   instant: its created_at, except an expiry, which counts from its grant's expires_at whenever
--   it was recorded, and a release of an expired reservation, dated its expiresAt. What had
--   happened by p_at but is not recorded yet is added: grants expired by then whose expiry no
--   entry records (their remaining has not changed since: nothing spends or refunds an expired
--   grant) and holds of reservations that had reached their expiresAt, on grants live at p_at.
--   Grants made after p_at, consumptions after it and expiries after it do not count.
-- Effects none (reads only). Errors: 23503 for an unknown user. Locks none.
create function credits.balance_at(p_user_id uuid, p_at timestamptz,
                                   p_now timestamptz default now(),
                                   out balance bigint, out reserved bigint)
language plpgsql stable
as $$
begin
  if p_at >= p_now then
    balance := credits.balance(p_user_id, p_at);
    reserved := credits.reserved(p_user_id, p_at);
    return;
  end if;
  perform credits.balance(p_user_id, p_now); -- 23503 for an unknown user

  select coalesce(sum(l.amount), 0) into balance
    from credits.ledger l
    left join credits.grants g
      on l.kind = 'expiry' and g.user_id = l.user_id and g.id = l.grant_id
   where l.user_id = p_user_id
     and case when l.kind = 'expiry' then greatest(g.expires_at, g.created_at)
              else l.created_at end <= p_at;

  balance := balance
    - (select coalesce(sum(g.remaining), 0) from credits.grants g
        where g.user_id = p_user_id and g.expired_at is null and g.remaining > 0
          and g.expires_at <= p_at and g.created_at <= p_at)
    + credits._held(p_user_id, p_at, true);

  select coalesce(sum(h.amount), 0) into reserved
    from credits.reservations r
   cross join lateral jsonb_to_recordset(r.holds) as h ("grant" bigint, amount bigint)
    join credits.grants g on g.user_id = r.user_id and g.id = h."grant"
   where r.user_id = p_user_id and r.created_at <= p_at and r.expires_at > p_at
     and (r.closed_at is null or r.closed_at > p_at)
     and (g.expires_at is null or g.expires_at > p_at);
end
$$;
