// A user's balance as the balance row, the ledger and the grants each tell it: the three must agree
// once the ledger has caught up with expiries.
import assert from "node:assert/strict";
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

/** Asserts that the balance row, the ledger's sum, its last balance-after and the grants not yet
 * expired all equal `expected`. */
export function assertBooksAt(value: Books, expected: number, message?: string): void {
  assert.deepEqual(value, {
    stored: expected,
    ledgerSum: expected,
    lastAfter: expected,
    unexpiredRemaining: expected,
  }, message);
}

export type Agreement = Omit<Books, "lastAfter"> & { spendable: number };

/** The books without the last balance-after, and with credits.balance (what can be spent now). */
export async function agreement(sql: Sql, user: string): Promise<Agreement> {
  const { stored, ledgerSum, unexpiredRemaining } = await books(sql, user);
  const [{ spendable }] = await sql<{ spendable: number }[]>`
    select credits.balance(${user}) as spendable`;
  return { stored, ledgerSum, unexpiredRemaining, spendable };
}

/** Sum of the ledger = balances.balance = sum of grants' remaining; the chain of balance-after. */
export async function assertBooksAgree(sql: Sql, user: string): Promise<number> {
  const [row] = await sql<
    { ledger: number; stored: number; remaining: number; broken: number; negative: number }[]
  >`
    select (select coalesce(sum(amount), 0)::int from credits.ledger where user_id = ${user})
             as ledger,
           (select balance::int from credits.balances where user_id = ${user}) as stored,
           (select coalesce(sum(remaining), 0)::int from credits.grants where user_id = ${user})
             as remaining,
           (select count(*)::int from (
              select balance_after, sum(amount) over (order by id) as running
                from credits.ledger where user_id = ${user}) x
             where balance_after <> running) as broken,
           (select count(*)::int from credits.ledger
             where user_id = ${user} and balance_after < 0) as negative`;
  assert.deepEqual(row, {
    ledger: row.stored,
    stored: row.remaining,
    remaining: row.remaining,
    broken: 0,
    negative: 0,
  });
  return row.stored;
}

/**
 * A user's reservations agree with the ledger: each one's 'reservation' entry took its amount
 * from the grants it lists as holds; an open one has no closing entry yet; a closed one's
 * 'release' entry gave back what it says it returned, and a settled one's usage spent what it
 * says it settled, from those holds.
 */
export async function assertHoldsAgree(sql: Sql, user: string): Promise<void> {
  const rows = await sql<{ id: number; problem: string }[]>`
    select r.id,
           case
             when e.amount is distinct from -r.amount or e.draws is distinct from r.holds
               then 'reservation entry'
             when r.status = 'open' and rel.amount is not null then 'released while open'
             when r.status <> 'open' and coalesce(rel.amount, 0) <> r.returned then 'returned'
             when coalesce(-u.amount, 0) <> coalesce(r.settled_amount, 0) then 'settled'
             when r.returned > r.amount then 'returned more than held'
           end as problem
      from credits.reservations r
      left join credits.ledger e on e.user_id = r.user_id and e.id = r.id and e.kind = 'reservation'
      left join lateral (select sum(l.amount) as amount from credits.ledger l
                          where l.user_id = r.user_id and l.origin_id = r.id
                            and l.kind = 'release') rel on true
      left join lateral (select sum(l.amount) as amount from credits.ledger l
                          where l.user_id = r.user_id and l.origin_id = r.id
                            and l.kind = 'usage') u on true
     where r.user_id = ${user}`;
  assert.deepEqual(
    rows.filter((r) => r.problem !== null),
    [],
    "reservations agree with the ledger",
  );
}
