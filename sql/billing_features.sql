-- Features: what one use of a named feature costs (plans.json "features", loaded into
-- billing.features by billing.load_plans), so an app can spend by feature instead of by amount.

-- credits.feature_cost(p_feature, p_quantity)
-- Inputs: a feature id of the plans file; how many uses.
-- Returns: the feature's credits × p_quantity, the amount a consumption or reservation takes.
-- Errors: 22023 for a null or non-positive quantity, or a product above 2^53 (beyond what a JSON
--   number holds exactly); CR006 for a feature the plans file does not list (or no longer lists).
-- Effects none (reads only), so no idempotency key. Locks none.
create function credits.feature_cost(p_feature text, p_quantity bigint) returns bigint
language plpgsql stable
as $$
declare
  v_credits bigint;
begin
  if p_quantity is null or p_quantity <= 0 then
    perform credits.raise_invalid('quantity must be a positive whole number');
  end if;
  select f.credits into v_credits from billing.features f where f.id = p_feature and f.active;
  if not found then
    raise exception using errcode = 'CR006', message = format('unknown feature %L', p_feature);
  end if;
  -- numeric: a bigint product could overflow before it is compared.
  if v_credits::numeric * p_quantity > 9007199254740992 then
    perform credits.raise_invalid(format('%s × %s credits is too large', p_quantity, v_credits));
  end if;
  return v_credits * p_quantity;
end
$$;
