// Billing events in Tally's provider-neutral shape (providers/billing_event.ts), applied
// with billing.apply_event at the SQL boundary (no HTTP, no signatures); the check that a user's
// books agree afterwards is assertBooksAgree in books.ts. The clock is T0, the start of the test run, moved with at().
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";

export type Json = Record<string, unknown>;
export const DAY = 86_400_000;
export const T0 = Math.floor(Date.now() / 1000) * 1000;
export const at = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();
let sequence = 0;
export const ref = (prefix: string) => `${prefix}_${++sequence}_${crypto.randomUUID().slice(0, 8)}`;

export const who = (
  userId: string | null,
  customerRef: string | null = null,
  email: string | null = null,
) => ({
  userId,
  customerRef,
  email,
});

export function checkoutPaid(o: {
  user: string;
  customerRef?: string;
  priceId: string;
  payment: string;
  amount: number;
}): Json {
  return {
    kind: "checkout_paid",
    customer: who(o.user, o.customerRef ?? null),
    priceId: o.priceId,
    checkoutRef: `cs_${o.payment}`,
    paymentRef: o.payment,
    paymentRefs: [o.payment, `cs_${o.payment}`],
    amount: o.amount,
    currency: "usd",
    paidAt: at(0),
  };
}

export function periodPaid(o: {
  customer: Json;
  sub: string;
  priceId: string;
  start: string;
  end: string;
  payment: string;
  amount?: number;
}): Json {
  return {
    kind: "period_paid",
    customer: o.customer,
    subscriptionRef: o.sub,
    priceId: o.priceId,
    periodStart: o.start,
    periodEnd: o.end,
    paymentRef: o.payment,
    paymentRefs: [o.payment],
    amount: o.amount ?? 990,
    currency: "usd",
    paidAt: o.start,
    grantsPeriod: (o.amount ?? 990) > 0,
  };
}

/** The prorated invoice of a move from fromPriceId to priceId at `changedAt` within the period
 * that ends at `end` (Stripe: billing_reason subscription_update). */
export function upgradePaid(o: {
  customer: Json;
  sub: string;
  priceId: string;
  fromPriceId: string | null;
  changedAt: string;
  end: string;
  payment: string;
  amount?: number;
}): Json {
  return {
    ...periodPaid({ ...o, start: o.changedAt, amount: o.amount ?? 700 }),
    grantsPeriod: false,
    paysUpgrade: true,
    fromPriceId: o.fromPriceId,
  };
}

export function subscriptionChanged(o: {
  customer: Json;
  sub: string;
  priceId: string;
  status: string;
  start: string;
  end: string;
  occurredAt: string;
  cancelAtPeriodEnd?: boolean;
  canceledAt?: string | null;
}): Json {
  return {
    kind: "subscription_changed",
    customer: o.customer,
    subscriptionRef: o.sub,
    priceId: o.priceId,
    status: o.status,
    periodStart: o.start,
    periodEnd: o.end,
    cancelAtPeriodEnd: o.cancelAtPeriodEnd ?? false,
    canceledAt: o.canceledAt ?? null,
    occurredAt: o.occurredAt,
  };
}

export const refundTotal = (payment: string, total: number, refundRef = `ch_${payment}`): Json => ({
  kind: "refund",
  paymentRefs: [payment],
  refundRef,
  refundedTotal: total,
  amount: null,
  occurredAt: at(0),
});
export const refundAmount = (payment: string, amount: number, refundRef: string): Json => ({
  kind: "refund",
  paymentRefs: [payment],
  refundRef,
  refundedTotal: null,
  amount,
  occurredAt: at(0),
});
export const dispute = (payment: string, disputeRef = ref("dp")): Json => ({
  kind: "dispute",
  paymentRefs: [payment],
  disputeRef,
  occurredAt: at(0),
});

export async function applyEvent(
  sql: Sql,
  event: Json,
  options: { id?: string; provider?: string; now?: string } = {},
): Promise<string> {
  const [row] = await sql<{ result: string }[]>`
    select billing.apply_event(${options.provider ?? "stripe"}, ${options.id ?? ref("evt")},
                               ${String(event.kind)}, ${JSON.stringify(event)}::text::jsonb,
                               ${options.now ?? at(0)}::timestamptz) as result`;
  return row.result;
}

/** A user's balance at `now`. */
export async function balanceOf(sql: Sql, user: string, now = at(0)): Promise<number> {
  const [row] = await sql<{ b: number }[]>`select credits.balance(${user}, ${now})::int as b`;
  return row.b;
}

/** The plan a user is on at `now` (billing.plan_of). */
export async function planOf(sql: Sql, user: string, now = at(0)): Promise<string> {
  const [row] = await sql<{ plan_id: string }[]>`
    select plan_id from billing.plan_of(${user}, ${now}::timestamptz)`;
  return row.plan_id;
}

/** A lifetime purchase (price_lifetime, 19900) by the user; returns its payment reference. */
export async function buyLifetime(sql: Sql, user: string): Promise<string> {
  const payment = ref("pi");
  const result = await applyEvent(
    sql,
    checkoutPaid({ user, priceId: "price_lifetime", payment, amount: 19900 }),
  );
  assert.equal(result, "processed");
  return payment;
}
