// The provider-neutral shape of a payment event. Stripe and Creem events are turned into this
// (stripe_events.ts, creem_events.ts), validated here, and stored as is in the webhook inbox, so
// that billing.apply_event and a later replay read only this (sql/billing_events.sql documents each
// kind). Nothing here decides credits: SQL reads them from the plans tables by price ID.
import { z } from "zod";
import { HttpError } from "../utils/errors.ts";
import type { Provider } from "../utils/kinds.ts";

export type { Provider };

const ref = z.string().min(1).max(255);
const instant = z.iso.datetime({ offset: true });
const minorUnits = z.number().int().nonnegative();

/** Who the event is about; the user is found by userId, else customerRef, else email. */
export const CustomerRef = z.object({
  userId: z.string().max(100).nullable(),
  customerRef: ref.nullable(),
  email: z.string().max(320).nullable(),
});
export type CustomerRef = z.infer<typeof CustomerRef>;

const paymentRefs = z.array(ref).min(1).max(10);

export const BillingEvent = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("checkout_paid"),
    customer: CustomerRef,
    /** Null when the event does not name it: SQL then reads Tally's record of the checkout. */
    priceId: ref.nullable(),
    checkoutRef: ref,
    paymentRef: ref,
    paymentRefs,
    amount: minorUnits,
    currency: z.string().min(3).max(10),
    paidAt: instant,
  }),
  z.object({
    kind: z.literal("checkout_linked"),
    customer: CustomerRef,
    subscriptionRef: ref.nullable(),
  }),
  z.object({
    kind: z.literal("period_paid"),
    customer: CustomerRef,
    subscriptionRef: ref,
    priceId: ref,
    periodStart: instant,
    periodEnd: instant,
    paymentRef: ref,
    paymentRefs,
    amount: minorUnits,
    currency: z.string().min(3).max(10),
    paidAt: instant,
    /** A first or renewal invoice with money paid (not a proration, not a trial's $0). */
    grantsPeriod: z.boolean(),
    /** The prorated invoice of a move to priceId within the period (an upgrade's payment when
     * money was paid): periodStart is then the moment of the change, inside its period. */
    paysUpgrade: z.boolean().default(false),
    /** For an upgrade's payment, the price it moved from, when the provider names it. */
    fromPriceId: ref.nullable().default(null),
  }),
  z.object({
    kind: z.literal("subscription_changed"),
    customer: CustomerRef,
    subscriptionRef: ref,
    priceId: ref,
    status: z.enum([
      "active",
      "trialing",
      "past_due",
      "canceled",
      "unpaid",
      "paused",
      "incomplete",
      "incomplete_expired",
      "expired",
    ]),
    periodStart: instant,
    periodEnd: instant,
    cancelAtPeriodEnd: z.boolean(),
    canceledAt: instant.nullable(),
    occurredAt: instant,
  }),
  z.object({
    kind: z.literal("refund"),
    paymentRefs,
    refundRef: ref,
    /** The provider's cumulative refunded amount of the payment (Stripe's amount_refunded). */
    refundedTotal: minorUnits.nullable(),
    /** This refund's amount, when the provider gives no cumulative figure (Creem). */
    amount: minorUnits.nullable(),
    occurredAt: instant,
  }),
  z.object({
    kind: z.literal("dispute"),
    paymentRefs,
    disputeRef: ref,
    occurredAt: instant,
  }),
  z.object({ kind: z.literal("ignored") }),
]);
export type BillingEvent = z.infer<typeof BillingEvent>;

export const IGNORED: BillingEvent = { kind: "ignored" };

/** A signed body that is not a usable event: 400, nothing stored. */
export function invalidEvent(provider: Provider, detail: string): HttpError {
  return new HttpError(400, "invalid_request", `not a valid ${provider} event: ${detail}`);
}

/** Validates a provider's payload with a zod schema, or throws a 400 naming the field. */
export function parsePart<T extends z.ZodType>(
  provider: Provider,
  schema: T,
  value: unknown,
): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.join(".");
    throw invalidEvent(provider, field ? `${field}: ${issue.message}` : issue.message);
  }
  return parsed.data;
}

/** The neutral event, checked once more before it reaches SQL. */
export function checkedEvent(provider: Provider, event: BillingEvent): BillingEvent {
  return parsePart(provider, BillingEvent, event);
}

export function fromUnixSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/** Distinct, non-empty references, in order of appearance. */
export function refsOf(...values: (string | null | undefined)[]): string[] {
  return [...new Set(values.filter((v): v is string => typeof v === "string" && v.length > 0))];
}
