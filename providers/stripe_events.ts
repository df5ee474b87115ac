// Stripe events → the neutral BillingEvent. The schemas take only the fields Tally needs, and
// accept both the pre-2025 and the 2025+ ("basil") places of invoice and subscription fields:
// invoice.subscription | invoice.parent.subscription_details.subscription, line.price.id |
// line.pricing.price_details.price, subscription.current_period_* | items.data[].current_period_*.
import { z } from "zod";
import {
  type BillingEvent,
  checkedEvent,
  type CustomerRef,
  fromUnixSeconds,
  IGNORED,
  invalidEvent,
  parsePart,
  refsOf,
} from "./billing_event.ts";

export const STRIPE_EVENT_TYPES = [
  "checkout.session.completed",
  "checkout.session.async_payment_succeeded",
  "invoice.paid",
  "customer.subscription.created",
  "customer.subscription.updated",
  "customer.subscription.deleted",
  "charge.refunded",
  "charge.dispute.created",
] as const;

export const StripeEnvelope = z.object({
  id: z.string().min(1).max(255),
  type: z.string().min(1).max(255),
  created: z.number().int(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});
export type StripeEnvelope = z.infer<typeof StripeEnvelope>;

/** An ID that Stripe sends either as a string or, when expanded, as an object with an id. */
const expandable = z.union([z.string(), z.object({ id: z.string() })]).nullish()
  .transform((value) => (value == null ? null : typeof value === "string" ? value : value.id));
const metadata = z.record(z.string(), z.string()).nullish().transform((m) => m ?? {});
const id = z.string().min(1);

const CheckoutSession = z.object({
  id,
  mode: z.enum(["payment", "subscription", "setup"]),
  payment_status: z.string(),
  client_reference_id: z.string().nullish(),
  metadata,
  customer: expandable,
  customer_email: z.string().nullish(),
  customer_details: z.object({ email: z.string().nullish() }).nullish(),
  payment_intent: expandable,
  subscription: expandable,
  amount_total: z.number().int().nullish(),
  currency: z.string().nullish(),
  created: z.number().int(),
  line_items: z.object({
    data: z.array(z.object({ price: z.object({ id }).nullish() })),
  }).nullish(),
});

const InvoiceLine = z.object({
  amount: z.number().int().nullish(),
  price: z.object({ id }).nullish(),
  pricing: z.object({ price_details: z.object({ price: expandable }).nullish() }).nullish(),
  period: z.object({ start: z.number().int(), end: z.number().int() }),
});

const Invoice = z.object({
  id,
  customer: expandable,
  customer_email: z.string().nullish(),
  amount_paid: z.number().int().nonnegative(),
  currency: z.string(),
  billing_reason: z.string().nullish(),
  created: z.number().int(),
  status_transitions: z.object({ paid_at: z.number().int().nullish() }).nullish(),
  subscription: expandable,
  subscription_details: z.object({ metadata }).nullish(),
  parent: z.object({
    subscription_details: z.object({ subscription: expandable, metadata }).nullish(),
  }).nullish(),
  payment_intent: expandable,
  charge: expandable,
  metadata,
  lines: z.object({ data: z.array(InvoiceLine).min(1) }),
});

const SubscriptionItem = z.object({
  price: z.object({ id }),
  current_period_start: z.number().int().nullish(),
  current_period_end: z.number().int().nullish(),
});

const Subscription = z.object({
  id,
  customer: expandable,
  status: z.enum([
    "active",
    "trialing",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
    "incomplete",
    "incomplete_expired",
  ]),
  metadata,
  cancel_at_period_end: z.boolean().nullish(),
  cancel_at: z.number().int().nullish(),
  canceled_at: z.number().int().nullish(),
  current_period_start: z.number().int().nullish(),
  current_period_end: z.number().int().nullish(),
  items: z.object({ data: z.array(SubscriptionItem).min(1) }),
});

const Charge = z.object({
  id,
  payment_intent: expandable,
  invoice: expandable,
  amount_refunded: z.number().int().nonnegative(),
});

const Dispute = z.object({ id, charge: expandable, payment_intent: expandable });

function customer(
  userId: string | null | undefined,
  customerRef: string | null,
  email: string | null | undefined,
): CustomerRef {
  return { userId: userId || null, customerRef, email: email || null };
}

function checkoutEvent(event: StripeEnvelope): BillingEvent {
  const session = parsePart("stripe", CheckoutSession, event.data.object);
  if (session.mode === "setup") return IGNORED;
  const who = customer(
    session.metadata.user_id ?? session.client_reference_id,
    session.customer,
    session.customer_details?.email ?? session.customer_email,
  );
  const paid = session.payment_status === "paid" ||
    session.payment_status === "no_payment_required";
  if (session.mode === "subscription" || !paid) {
    return { kind: "checkout_linked", customer: who, subscriptionRef: session.subscription };
  }
  // Webhooks carry no line items unless expanded. Without them, SQL reads the price from Tally's
  // record of the checkout (billing.checkouts), never from the session's metadata.
  const priceId = session.line_items?.data.find((line) => line.price)?.price?.id ?? null;
  if (session.amount_total == null || !session.currency) {
    throw invalidEvent("stripe", "data.object.amount_total: required for a paid session");
  }
  return {
    kind: "checkout_paid",
    customer: who,
    priceId,
    checkoutRef: session.id,
    paymentRef: session.payment_intent ?? session.id,
    paymentRefs: refsOf(session.payment_intent, session.id),
    amount: session.amount_total,
    currency: session.currency,
    paidAt: fromUnixSeconds(session.created),
  };
}

function invoicePaid(event: StripeEnvelope): BillingEvent {
  const invoice = parsePart("stripe", Invoice, event.data.object);
  const subscriptionRef = invoice.parent?.subscription_details?.subscription ??
    invoice.subscription;
  if (!subscriptionRef) return IGNORED; // a one-off invoice: Tally sells one-off prices by checkout
  const reason = invoice.billing_reason ?? "";
  const priceOf = (l: z.infer<typeof InvoiceLine>) =>
    l.pricing?.price_details?.price ?? l.price?.id;
  const priced = invoice.lines.data.filter((l) => priceOf(l));
  // A plan change invoiced at once (proration_behavior always_invoice) is billing_reason
  // subscription_update: a credit line for the unused time on the old price (negative amount)
  // and a charge line for the rest of the period on the new one, both from the change to the
  // period's end. The charge names the plan paid for; the credit the plan left.
  // Any other invoice pays the period its latest line ends with: a renewal that also carries an
  // earlier change's prorations (proration_behavior create_prorations) lists those first.
  const isUpdate = reason === "subscription_update";
  const latest = priced.reduce<typeof priced[number] | undefined>(
    (best, l) => (best && best.period.end >= l.period.end ? best : l),
    undefined,
  );
  const line = (isUpdate ? priced.find((l) => (l.amount ?? 0) > 0) : latest) ?? priced[0] ??
    invoice.lines.data[0];
  const priceId = priceOf(line);
  if (!priceId) throw invalidEvent("stripe", "data.object.lines: no line names a price");
  const credited = isUpdate ? priced.find((l) => (l.amount ?? 0) < 0) : undefined;
  const meta = {
    ...invoice.metadata,
    ...invoice.subscription_details?.metadata,
    ...invoice.parent?.subscription_details?.metadata,
  };
  const opensPeriod = reason === "subscription_create" || reason === "subscription_cycle";
  return {
    kind: "period_paid",
    customer: customer(meta.user_id, invoice.customer, invoice.customer_email),
    subscriptionRef,
    priceId,
    periodStart: fromUnixSeconds(line.period.start),
    periodEnd: fromUnixSeconds(line.period.end),
    paymentRef: invoice.id,
    paymentRefs: refsOf(invoice.id, invoice.payment_intent, invoice.charge),
    amount: invoice.amount_paid,
    currency: invoice.currency,
    paidAt: fromUnixSeconds(invoice.status_transitions?.paid_at ?? invoice.created),
    // A trial starts with a $0 first invoice: the trial grant comes from the subscription.
    grantsPeriod: opensPeriod && !(reason === "subscription_create" && invoice.amount_paid === 0),
    paysUpgrade: isUpdate,
    fromPriceId: credited ? priceOf(credited) ?? null : null,
  };
}

function subscriptionChanged(event: StripeEnvelope): BillingEvent {
  const subscription = parsePart("stripe", Subscription, event.data.object);
  const item = subscription.items.data[0];
  const start = item.current_period_start ?? subscription.current_period_start;
  const end = item.current_period_end ?? subscription.current_period_end;
  if (start == null || end == null) {
    throw invalidEvent("stripe", "data.object: the subscription has no current period");
  }
  return {
    kind: "subscription_changed",
    customer: customer(subscription.metadata.user_id, subscription.customer, null),
    subscriptionRef: subscription.id,
    priceId: item.price.id,
    status: subscription.status,
    periodStart: fromUnixSeconds(start),
    periodEnd: fromUnixSeconds(end),
    cancelAtPeriodEnd: Boolean(subscription.cancel_at_period_end) ||
      subscription.cancel_at != null,
    canceledAt: subscription.canceled_at != null ? fromUnixSeconds(subscription.canceled_at) : null,
    occurredAt: fromUnixSeconds(event.created),
  };
}

function chargeRefunded(event: StripeEnvelope): BillingEvent {
  const charge = parsePart("stripe", Charge, event.data.object);
  return {
    kind: "refund",
    paymentRefs: refsOf(charge.payment_intent, charge.id, charge.invoice),
    refundRef: charge.id,
    refundedTotal: charge.amount_refunded,
    amount: null,
    occurredAt: fromUnixSeconds(event.created),
  };
}

function disputeCreated(event: StripeEnvelope): BillingEvent {
  const dispute = parsePart("stripe", Dispute, event.data.object);
  const paymentRefs = refsOf(dispute.payment_intent, dispute.charge);
  if (paymentRefs.length === 0) {
    throw invalidEvent("stripe", "data.object: the dispute names no charge");
  }
  return {
    kind: "dispute",
    paymentRefs,
    disputeRef: dispute.id,
    occurredAt: fromUnixSeconds(event.created),
  };
}

/** Turns a verified Stripe event into the neutral shape; throws a 400 HttpError when unusable. */
export function normalizeStripeEvent(
  raw: unknown,
): { envelope: StripeEnvelope; event: BillingEvent } {
  const envelope = parsePart("stripe", StripeEnvelope, raw);
  let event: BillingEvent;
  switch (envelope.type) {
    case "checkout.session.completed":
    case "checkout.session.async_payment_succeeded":
      event = checkoutEvent(envelope);
      break;
    case "invoice.paid":
      event = invoicePaid(envelope);
      break;
    case "customer.subscription.created":
    case "customer.subscription.updated":
    case "customer.subscription.deleted":
      event = subscriptionChanged(envelope);
      break;
    case "charge.refunded":
      event = chargeRefunded(envelope);
      break;
    case "charge.dispute.created":
      event = disputeCreated(envelope);
      break;
    default:
      event = IGNORED;
  }
  return { envelope, event: checkedEvent("stripe", event) };
}
