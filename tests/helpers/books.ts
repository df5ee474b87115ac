// A user's balance as the balance row, the ledger and the grants each tell it: the three must agree
// once the ledger has caught up with expiries.
import type { Sql } from "../../db/client.ts";

export type Books = {
  stored: number;
  ledgerSum: number;
  lastAfter: number;
  unexpiredRemaining: number;
};

export async function books(sql: Sql, user: string): Promise<Books> {
  const [row] = await sql<Books[]>`
    select b.balance as stored,
           (select coalesce(sum(amount), 0) from credits.ledger l where l.user_id = b.user_id)::bigint
             as "ledgerSum",
           coalesce((select balance_after from credits.ledger l where l.user_id = b.user_id
                      order by id desc limit 1), 0) as "lastAfter",
           (select coalesce(sum(remaining), 0) from credits.grants g
             where g.user_id = b.user_id and g.expired_at is null)::bigint as "unexpiredRemaining"
      from credits.balances b where b.user_id = ${user}`;
  return { ...row };
}
