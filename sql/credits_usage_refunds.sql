-- Usage refunds: credits of a usage given back to the grants it drew from (a failed model call
-- that was charged, say). docs/credit-rules.md#usage-refunds. Locks as sql/credits.sql's header.

-- credits.refund_usage(p_usage_id, p_amount, p_idempotency_key, p_description, p_now)
-- Inputs: a 'usage' ledger entry's id (a consumption, a batch event or a settlement); the credits
--   to give back (null: all that the usage still has to give); the caller's key; the clock.
-- Effects: records the user's due expiries and releases; gives p_amount back to the grants the
--   usage drew from that are still live at p_now, the grant drawn last first, never more to a
--   grant than the usage took from it less what earlier refunds gave it (a grant that has expired
--   since gets nothing: what it would have held is gone); raises the balance; appends one
--   'usage_refund' entry (origin the usage, draws the grants given to).
-- Returns: the credits given back and the balance after. A usage with nothing left to give and no
--   amount asked gives 0 and records nothing.
-- Idempotency key: (user, 'usage_refund', p_idempotency_key); a repeat for the same usage with the
--   same (or no) amount returns the first answer; another usage or amount raises CR002.
-- Errors: 22023 for an empty key or a non-positive amount; CR007 for an unknown usage; CR005 when
--   p_amount exceeds what the usage has left to give.
-- Locks: the usage's user's balance row, then the grants.
create function credits.refund_usage(p_usage_id bigint, p_amount bigint, p_idempotency_key text,
                                     p_description text default null,
                                     p_now timestamptz default now(),
                                     out refunded bigint, out balance bigint)
language plpgsql
-- Its statements are all by user and id: one plan each for the session (planning them per call
-- cost more than running them).
set plan_cache_mode = force_generic_plan
as $$
declare
  v_user uuid;
  v_usage credits.ledger;
  v_first credits.ledger;
  v_left bigint;
  v_amount bigint;
begin
  if p_idempotency_key is null or p_idempotency_key = '' then
    perform credits.raise_invalid('an idempotency key is required');
  end if;
  if p_amount <= 0 then
    perform credits.raise_invalid('a refund amount must be a positive number of credits');
  end if;
  select l.user_id into v_user from credits.ledger l where l.id = p_usage_id and l.kind = 'usage';
  if not found then
    raise exception using errcode = 'CR007', message = format('no usage %s', p_usage_id);
  end if;
  select b.balance into balance from credits.balances b where b.user_id = v_user for update;
  perform credits._expire_locked(v_user, p_now);

  select * into v_first from credits.ledger l
   where l.user_id = v_user and l.kind = 'usage_refund' and l.idempotency_key = p_idempotency_key;
  if found then
    if v_first.origin_id <> p_usage_id or p_amount <> v_first.amount then
      perform credits.raise_key_reused(p_idempotency_key, v_first.amount,
                                       coalesce(p_amount, v_first.amount));
    end if;
    refunded := v_first.amount;
    balance := v_first.balance_after;
    return;
  end if;

  select * into v_usage from credits.ledger l where l.user_id = v_user and l.id = p_usage_id;
  select coalesce(sum(o.open), 0) into v_left from credits._refundable_draws(v_usage, p_now) o;
  v_amount := coalesce(p_amount, v_left);
  if v_amount > v_left then
    raise exception using errcode = 'CR005',
      message = format('refund of %s exceeds the %s credits usage %s has left to give back',
                       v_amount, v_left, p_usage_id);
  end if;
  select b.balance into balance from credits.balances b where b.user_id = v_user;
  refunded := v_amount;
  if v_amount = 0 then
    return;
  end if;

  with given as (
    select o.grant_id,
           least(o.open, greatest(0, v_amount - (sum(o.open) over (order by o.position desc)
                                                 - o.open))) as give,
           o.position
      from credits._refundable_draws(v_usage, p_now) o
  ), back as (
    update credits.grants g
       set remaining = g.remaining + x.give, expired_at = null
      from given x
     where g.user_id = v_user and g.id = x.grant_id and x.give > 0
  ), raised as (
    update credits.balances b set balance = b.balance + v_amount, updated_at = now()
     where b.user_id = v_user
    returning b.balance
  )
  insert into credits.ledger (user_id, kind, amount, balance_after, description, created_at,
                              idempotency_key, draws, origin_id)
  select v_user, 'usage_refund', v_amount, r.balance, p_description, p_now, p_idempotency_key,
         (select jsonb_agg(jsonb_build_object('grant', x.grant_id, 'amount', x.give)
                           order by x.position desc)
            from given x where x.give > 0),
         p_usage_id
    from raised r
  returning balance_after into balance;
end
$$;

-- credits._refundable_draws(p_usage, p_now) -> (grant_id, open, position): per grant the usage
--   drew from and that is live at p_now, what it took less what earlier usage refunds gave back;
--   position is the draw's place in the usage. Reads only (the caller holds the balance lock).
create function credits._refundable_draws(p_usage credits.ledger, p_now timestamptz)
returns table (grant_id bigint, open bigint, "position" bigint)
language plpgsql stable
as $$
#variable_conflict use_column
begin
  return query
  with back as (
      select x."grant", sum(x.amount) as amount
        from credits.ledger l
       cross join lateral jsonb_to_recordset(l.draws) as x ("grant" bigint, amount bigint)
       where l.user_id = p_usage.user_id and l.origin_id = p_usage.id and l.kind = 'usage_refund'
       group by x."grant"
    )
    select d."grant", (d.amount - coalesce(b.amount, 0))::bigint, d.ord
      from rows from (jsonb_to_recordset(p_usage.draws) as ("grant" bigint, amount bigint))
           with ordinality as d ("grant", amount, ord)
      left join back b on b."grant" = d."grant"
      join credits.grants g on g.user_id = p_usage.user_id and g.id = d."grant"
     where g.expired_at is null and (g.expires_at is null or g.expires_at > p_now)
       and d.amount - coalesce(b.amount, 0) > 0;
end
$$;
