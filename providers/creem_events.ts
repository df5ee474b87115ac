// Creem events → the neutral BillingEvent. A Creem webhook body is {id, eventType, created_at
// (ms), object}; the schemas take only the fields Tally needs. In Creem a product ID is the
// price: plans.json lists it as the priceId.
import { z } from "zod";
import {
  type BillingEvent,
  checkedEvent,
  type CustomerRef,
  IGNORED,
  invalidEvent,
  parsePart,
  refsOf,
} from "./billing_event.ts";

export const CREEM_EVENT_TYPES = [
  "checkout.completed",
  "subscription.active",
  "subscription.trialing",
  "subscription.paid",
  "subscription.update",
  "subscription.canceled",
  "subscription.scheduled_cancel",
  "subscription.past_due",
  "subscription.paused",
  "subscription.unpaid",
  "subscription.expired",
  "refund.created",
  "dispute.created",
] as const;

export const CreemEnvelope = z.object({
  id: z.string().min(1).max(255),
  eventType: z.string().min(1).max(255),
  created_at: z.number().int(),
  object: z.record(z.string(), z.unknown()),
});
export type CreemEnvelope = z.infer<typeof CreemEnvelope>;

const id = z.string().min(1);
/** An object Creem sends either expanded or as its ID. */
const expandable = z.union([z.string(), z.object({ id })]).nullish()
  .transform((value) => (value == null ? null : typeof value === "string" ? value : value.id));
const metadata = z.record(z.string(), z.unknown()).nullish().transform((m) => m ?? {});
const CustomerObject = z.union([
  z.string().transform((ref) => ({ id: ref, email: null as string | null })),
  z.object({ id, email: z.string().nullish() }),
]).nullish();
/** ISO dates, or epoch milliseconds as some transaction fields carry them. */
const when = z.union([z.iso.datetime({ offset: true }), z.number().int()])
  .transform((v) => new Date(v).toISOString());

const Transaction = z.object({
  id,
  amount: z.number().int().nonnegative().nullish(),
  amount_paid: z.number().int().nonnegative().nullish(),
  currency: z.string().nullish(),
  order: z.string().nullish(),
  period_start: when.nullish(),
  period_end: when.nullish(),
  created_at: when.nullish(),
});

const Checkout = z.object({
  id,
  product: expandable.refine((p) => p !== null, "required"),
  order: z.object({
    id,
    transaction: z.string().nullish(),
    amount: z.number().int().nonnegative(),
    amount_paid: z.number().int().nonnegative().nullish(),
    currency: z.string(),
    created_at: when.nullish(),
  }).nullish(),
  subscription: expandable,
  customer: CustomerObject,
  metadata,
});

const Subscription = z.object({
  id,
  product: expandable.refine((p) => p !== null, "required"),
  customer: CustomerObject,
  status: z.string(),
  last_transaction_id: z.string().nullish(),
  last_transaction: Transaction.nullish(),
  current_period_start_date: when.nullish(),
  current_period_end_date: when.nullish(),
  canceled_at: when.nullish(),
  metadata,
});

const Refund = z.object({
  id,
  refund_amount: z.number().int().nonnegative(),
  transaction: Transaction,
  order: expandable,
  checkout: expandable,
});

const Dispute = z.object({
  id,
  transaction: Transaction,
  order: expandable,
  checkout: expandable,
});

function customer(meta: Record<string, unknown>, who: z.infer<typeof CustomerObject>): CustomerRef {
  const userId = typeof meta.user_id === "string" ? meta.user_id : null;
  return { userId, customerRef: who?.id ?? null, email: who?.email ?? null };
}

function checkoutCompleted(envelope: CreemEnvelope): BillingEvent {
  const checkout = parsePart("creem", Checkout, envelope.object);
  const who = customer(checkout.metadata, checkout.customer);
  if (checkout.subscription) {
    return { kind: "checkout_linked", customer: who, subscriptionRef: checkout.subscription };
  }
  const order = checkout.order;
  if (!order) throw invalidEvent("creem", "object.order: required for a one-time purchase");
  return {
    kind: "checkout_paid",
    customer: who,
    priceId: checkout.product as string,
    checkoutRef: checkout.id,
    paymentRef: order.id,
    paymentRefs: refsOf(order.id, order.transaction, checkout.id),
    amount: order.amount_paid ?? order.amount,
    currency: order.currency,
    paidAt: order.created_at ?? new Date(envelope.created_at).toISOString(),
  };
}

type CreemSubscription = z.infer<typeof Subscription>;

function period(subscription: CreemSubscription): { start: string; end: string } {
  const start = subscription.current_period_start_date ??
    subscription.last_transaction?.period_start;
  const end = subscription.current_period_end_date ?? subscription.last_transaction?.period_end;
  if (!start || !end) {
    throw invalidEvent("creem", "object.current_period_start_date: the period is missing");
  }
  return { start, end };
}

function subscriptionPaid(envelope: CreemEnvelope): BillingEvent {
  const subscription = parsePart("creem", Subscription, envelope.object);
  const transaction = subscription.last_transaction;
  const transactionId = transaction?.id ?? subscription.last_transaction_id;
  if (!transactionId) {
    throw invalidEvent("creem", "object.last_transaction: required for a paid period");
  }
  const { start, end } = period(subscription);
  const amount = transaction?.amount_paid ?? transaction?.amount ?? null;
  // An upgrade charged at once (update_behavior proration-charge-immediately) is a transaction
  // for the rest of the current period: it starts after the period does. SQL also treats a
  // second paid transaction of a period on another product as its upgrade.
  const paysUpgrade = transaction?.period_start != null &&
    Date.parse(transaction.period_start) > Date.parse(start);
  return {
    kind: "period_paid",
    customer: customer(subscription.metadata, subscription.customer),
    subscriptionRef: subscription.id,
    priceId: subscription.product as string,
    periodStart: start,
    periodEnd: end,
    paymentRef: transactionId,
    paymentRefs: refsOf(transactionId, transaction?.order),
    amount: amount ?? 0,
    currency: transaction?.currency ?? "usd",
    paidAt: transaction?.created_at ?? new Date(envelope.created_at).toISOString(),
    grantsPeriod: !paysUpgrade && (amount === null || amount > 0),
    paysUpgrade,
    fromPriceId: null,
  };
}

type SubscriptionStatus = Extract<BillingEvent, { kind: "subscription_changed" }>["status"];

const STATUS_OF_EVENT: Record<string, SubscriptionStatus> = {
  "subscription.active": "active",
  "subscription.trialing": "trialing",
  "subscription.canceled": "canceled",
  "subscription.scheduled_cancel": "active",
  "subscription.past_due": "past_due",
  "subscription.paused": "paused",
  "subscription.unpaid": "unpaid",
  "subscription.expired": "expired",
};

/** Creem's own statuses, as Tally keeps them (scheduled_cancel is active until the period ends). */
const STATUS_OF_OBJECT: Record<string, SubscriptionStatus> = {
  active: "active",
  trialing: "trialing",
  canceled: "canceled",
  past_due: "past_due",
  paused: "paused",
  unpaid: "unpaid",
  scheduled_cancel: "active",
};

function subscriptionChanged(envelope: CreemEnvelope): BillingEvent {
  const subscription = parsePart("creem", Subscription, envelope.object);
  const { start, end } = period(subscription);
  // subscription.update carries whatever status the subscription has; the other types name it.
  const status = STATUS_OF_EVENT[envelope.eventType] ?? STATUS_OF_OBJECT[subscription.status];
  if (!status) throw invalidEvent("creem", `object.status: unknown status ${subscription.status}`);
  return {
    kind: "subscription_changed",
    customer: customer(subscription.metadata, subscription.customer),
    subscriptionRef: subscription.id,
    priceId: subscription.product as string,
    status,
    periodStart: start,
    periodEnd: end,
    cancelAtPeriodEnd: subscription.status === "scheduled_cancel" ||
      envelope.eventType === "subscription.scheduled_cancel",
    canceledAt: subscription.canceled_at ?? null,
    occurredAt: new Date(envelope.created_at).toISOString(),
  };
}

function refundCreated(envelope: CreemEnvelope): BillingEvent {
  const refund = parsePart("creem", Refund, envelope.object);
  return {
    kind: "refund",
    paymentRefs: refsOf(
      refund.transaction.id,
      refund.transaction.order,
      refund.order,
      refund.checkout,
    ),
    refundRef: refund.id,
    refundedTotal: null,
    amount: refund.refund_amount,
    occurredAt: new Date(envelope.created_at).toISOString(),
  };
}

function disputeCreated(envelope: CreemEnvelope): BillingEvent {
  const dispute = parsePart("creem", Dispute, envelope.object);
  return {
    kind: "dispute",
    paymentRefs: refsOf(
      dispute.transaction.id,
      dispute.transaction.order,
      dispute.order,
      dispute.checkout,
    ),
    disputeRef: dispute.id,
    occurredAt: new Date(envelope.created_at).toISOString(),
  };
}

/** Turns a verified Creem event into the neutral shape; throws a 400 HttpError when unusable. */
export function normalizeCreemEvent(
  raw: unknown,
): { envelope: CreemEnvelope; event: BillingEvent } {
  const envelope = parsePart("creem", CreemEnvelope, raw);
  let event: BillingEvent;
  switch (envelope.eventType) {
    case "checkout.completed":
      event = checkoutCompleted(envelope);
      break;
    case "subscription.paid":
      event = subscriptionPaid(envelope);
      break;
    case "subscription.active":
    case "subscription.trialing":
    case "subscription.update":
    case "subscription.canceled":
    case "subscription.scheduled_cancel":
    case "subscription.past_due":
    case "subscription.paused":
    case "subscription.unpaid":
    case "subscription.expired":
      event = subscriptionChanged(envelope);
      break;
    case "refund.created":
      event = refundCreated(envelope);
      break;
    case "dispute.created":
      event = disputeCreated(envelope);
      break;
    default:
      event = IGNORED;
  }
  return { envelope, event: checkedEvent("creem", event) };
}
