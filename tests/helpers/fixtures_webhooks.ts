// Signed provider events, built the way Stripe and Creem build them: Stripe's
// generateTestHeaderStringAsync (the v1 HMAC over "timestamp.payload"), and Creem's hex
// HMAC-SHA256 of the raw body. Payloads carry the fields the providers send (2025+ Stripe API
// shapes unless `legacy` is asked for), plus noise Tally must ignore.
import Stripe from "stripe";
import type { Sql } from "../../db/client.ts";

export const STRIPE_SECRET = "whsec_test_tally_webhooks";
export const CREEM_SECRET = "whsec_creem_test_tally";
export const WEBHOOK_ENV = {
  STRIPE_WEBHOOK_SECRET: STRIPE_SECRET,
  CREEM_WEBHOOK_SECRET: CREEM_SECRET,
};

const cryptoProvider = Stripe.createSubtleCryptoProvider();
let sequence = 0;
export const uniqueId = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}${(++sequence).toString(36)}${
    crypto.randomUUID().slice(0, 6)
  }`;

export const unix = (iso: string) => Math.floor(Date.parse(iso) / 1000);

export type StripeEvent = {
  id: string;
  object: "event";
  api_version: string;
  type: string;
  created: number;
  livemode: false;
  data: { object: Record<string, unknown> };
};

export function stripeEvent(
  type: string,
  object: Record<string, unknown>,
  options: { id?: string; created?: number } = {},
): StripeEvent {
  return {
    id: options.id ?? uniqueId("evt"),
    object: "event",
    api_version: "2025-10-29.clover",
    type,
    created: options.created ?? Math.floor(Date.now() / 1000),
    livemode: false,
    data: { object },
  };
}

export function stripeCheckoutSession(o: {
  userId?: string | null;
  customer?: string | null;
  email?: string;
  priceId?: string;
  paymentIntent?: string;
  amount?: number;
  mode?: "payment" | "subscription";
  subscription?: string;
  paymentStatus?: string;
  metadata?: Record<string, string>;
  id?: string;
}): Record<string, unknown> {
  const mode = o.mode ?? "payment";
  return {
    id: o.id ?? uniqueId("cs_test"),
    object: "checkout.session",
    mode,
    status: "complete",
    payment_status: o.paymentStatus ?? "paid",
    client_reference_id: o.userId ?? null,
    customer: o.customer ?? null,
    customer_details: { email: o.email ?? null, name: "Test" },
    customer_email: null,
    payment_intent: mode === "payment" ? o.paymentIntent ?? uniqueId("pi") : null,
    subscription: mode === "subscription" ? o.subscription ?? uniqueId("sub") : null,
    amount_total: o.amount ?? 1490,
    currency: "usd",
    created: Math.floor(Date.now() / 1000),
    // As if the endpoint expanded line_items; without priceId the session names no price, as
    // Stripe's own events do.
    ...(o.priceId
      ? { line_items: { object: "list", data: [{ price: { id: o.priceId }, quantity: 1 }] } }
      : {}),
    metadata: {
      ...(o.userId ? { user_id: o.userId } : {}),
      ...o.metadata,
    },
    livemode: false,
  };
}

export function stripeInvoice(o: {
  subscription: string;
  priceId: string;
  periodStart: string;
  periodEnd: string;
  customer?: string | null;
  email?: string | null;
  userId?: string | null;
  amountPaid?: number;
  billingReason?: string;
  id?: string;
  paymentIntent?: string;
  legacy?: boolean;
  /** A prorated upgrade (billing_reason subscription_update): the price left, and when. Its
   * lines are the credit for the unused time on that price and the charge for the rest of the
   * period on priceId, both from changedAt to periodEnd. */
  proration?: { fromPriceId: string; changedAt: string };
}): Record<string, unknown> {
  const period = { start: unix(o.periodStart), end: unix(o.periodEnd) };
  if (o.proration) {
    const rest = { start: unix(o.proration.changedAt), end: period.end };
    const line = (priceId: string, amount: number) => ({
      id: uniqueId("il"),
      amount,
      period: rest,
      pricing: { type: "price_details", price_details: { price: priceId, product: "prod_x" } },
      parent: {
        type: "subscription_item_details",
        subscription_item_details: { subscription: o.subscription, proration: true },
      },
    });
    const paid = o.amountPaid ?? 990;
    return {
      ...stripeInvoice({ ...o, proration: undefined, billingReason: "subscription_update" }),
      created: rest.start,
      status_transitions: { paid_at: rest.start + 5 },
      lines: {
        object: "list",
        data: [line(o.proration.fromPriceId, -100), line(o.priceId, paid + 100)],
      },
    };
  }
  const metadata = o.userId ? { user_id: o.userId } : {};
  const base = {
    id: o.id ?? uniqueId("in"),
    object: "invoice",
    customer: o.customer ?? null,
    customer_email: o.email ?? null,
    amount_paid: o.amountPaid ?? 990,
    amount_due: o.amountPaid ?? 990,
    currency: "usd",
    billing_reason: o.billingReason ?? "subscription_create",
    status: "paid",
    created: period.start,
    status_transitions: { paid_at: period.start + 5 },
    metadata: {},
  };
  if (o.legacy) {
    return {
      ...base,
      subscription: o.subscription,
      subscription_details: { metadata },
      payment_intent: o.paymentIntent ?? null,
      lines: {
        object: "list",
        data: [{ id: uniqueId("il"), price: { id: o.priceId }, period, type: "subscription" }],
      },
    };
  }
  return {
    ...base,
    parent: {
      type: "subscription_details",
      subscription_details: { subscription: o.subscription, metadata },
    },
    lines: {
      object: "list",
      data: [{
        id: uniqueId("il"),
        period,
        pricing: { type: "price_details", price_details: { price: o.priceId, product: "prod_x" } },
        parent: {
          type: "subscription_item_details",
          subscription_item_details: { subscription: o.subscription },
        },
      }],
    },
  };
}

export function stripeSubscription(o: {
  id: string;
  priceId: string;
  periodStart: string;
  periodEnd: string;
  status?: string;
  customer?: string | null;
  userId?: string | null;
  cancelAtPeriodEnd?: boolean;
  canceledAt?: string | null;
  legacy?: boolean;
}): Record<string, unknown> {
  const start = unix(o.periodStart);
  const end = unix(o.periodEnd);
  const item = {
    id: uniqueId("si"),
    price: { id: o.priceId, recurring: { interval: "month" } },
    ...(o.legacy ? {} : { current_period_start: start, current_period_end: end }),
  };
  return {
    id: o.id,
    object: "subscription",
    customer: o.customer ?? null,
    status: o.status ?? "active",
    metadata: o.userId ? { user_id: o.userId } : {},
    cancel_at_period_end: o.cancelAtPeriodEnd ?? false,
    cancel_at: null,
    canceled_at: o.canceledAt ? unix(o.canceledAt) : null,
    ...(o.legacy ? { current_period_start: start, current_period_end: end } : {}),
    items: { object: "list", data: [item] },
  };
}

export function stripeCharge(o: {
  paymentIntent: string;
  amount: number;
  amountRefunded: number;
  id?: string;
}): Record<string, unknown> {
  return {
    id: o.id ?? uniqueId("ch"),
    object: "charge",
    payment_intent: o.paymentIntent,
    amount: o.amount,
    amount_refunded: o.amountRefunded,
    refunded: o.amountRefunded >= o.amount,
    currency: "usd",
  };
}

export function stripeDispute(o: { paymentIntent: string; charge?: string }) {
  return {
    id: uniqueId("dp"),
    object: "dispute",
    charge: o.charge ?? uniqueId("ch"),
    payment_intent: o.paymentIntent,
    amount: 1000,
    status: "needs_response",
  };
}

export async function signStripe(payload: string, timestamp?: number): Promise<string> {
  return await Stripe.webhooks.generateTestHeaderStringAsync({
    payload,
    secret: STRIPE_SECRET,
    timestamp,
    cryptoProvider,
  });
}

export type WebhookReply = { status: number; json: Record<string, unknown> | null };

async function reply(response: Response): Promise<WebhookReply> {
  const text = await response.text();
  try {
    return { status: response.status, json: text ? JSON.parse(text) : null };
  } catch {
    return { status: response.status, json: null };
  }
}

/** Posts a Stripe event signed with STRIPE_SECRET (or the given header). */
export async function postStripe(
  baseUrl: string,
  event: StripeEvent | string,
  options: { signature?: string | null; timestamp?: number } = {},
): Promise<WebhookReply> {
  const payload = typeof event === "string" ? event : JSON.stringify(event);
  const signature = options.signature === undefined
    ? await signStripe(payload, options.timestamp)
    : options.signature;
  const response = await fetch(`${baseUrl}/api/webhooks/stripe`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(signature === null ? {} : { "stripe-signature": signature }),
    },
    body: payload,
  });
  return await reply(response);
}

export type CreemEvent = {
  id: string;
  eventType: string;
  created_at: number;
  object: Record<string, unknown>;
};

export function creemEvent(
  eventType: string,
  object: Record<string, unknown>,
  options: { id?: string; createdAt?: number } = {},
): CreemEvent {
  return {
    id: options.id ?? uniqueId("evt"),
    eventType,
    created_at: options.createdAt ?? Date.now(),
    object,
  };
}

export function creemCustomer(id: string, email = `${id}@creem.test`) {
  return {
    id,
    object: "customer",
    email,
    name: "Test",
    country: "DE",
    created_at: new Date().toISOString(),
    updated_at: new Date().toISOString(),
    mode: "test",
  };
}

export function creemProduct(id: string, billingType: "onetime" | "recurring") {
  return {
    id,
    object: "product",
    name: id,
    description: "",
    price: 1490,
    currency: "USD",
    billing_type: billingType,
    billing_period: billingType === "recurring" ? "every-month" : "once",
    status: "active",
    tax_mode: "inclusive",
    mode: "test",
  };
}

export function creemCheckout(o: {
  productId: string;
  customer: string;
  email?: string;
  userId?: string | null;
  orderId?: string;
  transactionId?: string;
  amount?: number;
  subscription?: Record<string, unknown> | string;
  metadata?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    id: uniqueId("ch"),
    object: "checkout",
    mode: "test",
    status: "completed",
    request_id: uniqueId("req"),
    product: creemProduct(o.productId, o.subscription ? "recurring" : "onetime"),
    units: 1,
    order: {
      id: o.orderId ?? uniqueId("ord"),
      object: "order",
      customer: o.customer,
      product: o.productId,
      transaction: o.transactionId ?? uniqueId("tran"),
      amount: o.amount ?? 1490,
      amount_paid: o.amount ?? 1490,
      currency: "USD",
      status: "paid",
      type: o.subscription ? "recurring" : "onetime",
      created_at: new Date().toISOString(),
      updated_at: new Date().toISOString(),
      mode: "test",
    },
    ...(o.subscription ? { subscription: o.subscription } : {}),
    customer: creemCustomer(o.customer, o.email),
    metadata: { ...(o.userId ? { user_id: o.userId } : {}), ...o.metadata },
  };
}

export function creemSubscription(o: {
  id: string;
  productId: string;
  customer: string;
  email?: string;
  status?: string;
  periodStart: string;
  periodEnd: string;
  userId?: string | null;
  transactionId?: string;
  amount?: number;
  canceledAt?: string | null;
  /** When the last transaction's period starts, if not with the subscription's period: a
   * prorated charge for the rest of the period (an upgrade charged at once). */
  transactionFrom?: string;
}): Record<string, unknown> {
  return {
    id: o.id,
    object: "subscription",
    mode: "test",
    product: creemProduct(o.productId, "recurring"),
    customer: creemCustomer(o.customer, o.email),
    collection_method: "charge_automatically",
    status: o.status ?? "active",
    last_transaction_id: o.transactionId ?? null,
    last_transaction: o.transactionId
      ? {
        id: o.transactionId,
        object: "transaction",
        amount: o.amount ?? 990,
        amount_paid: o.amount ?? 990,
        currency: "USD",
        type: "invoice",
        status: "paid",
        order: uniqueId("ord"),
        subscription: o.id,
        customer: o.customer,
        period_start: Date.parse(o.transactionFrom ?? o.periodStart),
        period_end: Date.parse(o.periodEnd),
        created_at: Date.parse(o.transactionFrom ?? o.periodStart) + 5000,
        mode: "test",
      }
      : undefined,
    current_period_start_date: o.periodStart,
    current_period_end_date: o.periodEnd,
    canceled_at: o.canceledAt ?? null,
    created_at: o.periodStart,
    updated_at: o.periodStart,
    metadata: o.userId ? { user_id: o.userId } : {},
  };
}

/** The payment transaction that Creem's refund and dispute objects embed. */
function creemTransaction(o: { transactionId: string; orderId?: string }, status: string) {
  return {
    id: o.transactionId,
    object: "transaction",
    amount: 1490,
    currency: "USD",
    type: "payment",
    status,
    order: o.orderId ?? null,
    created_at: Date.now(),
    mode: "test",
  };
}

export function creemRefund(o: { transactionId: string; orderId?: string; amount: number }) {
  return {
    id: uniqueId("ref"),
    object: "refund",
    mode: "test",
    status: "succeeded",
    refund_amount: o.amount,
    refund_currency: "USD",
    reason: "requested_by_customer",
    transaction: creemTransaction(o, "refunded"),
    order: o.orderId ?? null,
    created_at: Date.now(),
  };
}

export function creemDispute(o: { transactionId: string; orderId?: string }) {
  return {
    id: uniqueId("disp"),
    object: "dispute",
    mode: "test",
    amount: 1490,
    currency: "USD",
    transaction: creemTransaction(o, "disputed"),
    order: o.orderId ?? null,
    created_at: Date.now(),
  };
}

export async function signCreem(body: string, secret = CREEM_SECRET): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function postCreem(
  baseUrl: string,
  event: CreemEvent | string,
  options: { signature?: string | null } = {},
): Promise<WebhookReply> {
  const body = typeof event === "string" ? event : JSON.stringify(event);
  const signature = options.signature === undefined ? await signCreem(body) : options.signature;
  const response = await fetch(`${baseUrl}/api/webhooks/creem`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(signature === null ? {} : { "creem-signature": signature }),
    },
    body,
  });
  return await reply(response);
}

/** What a user's credits look like: balance (at now) and ledger entries, oldest first. */
export async function creditsOf(sql: Sql, userId: string) {
  const [{ balance }] = await sql<{ balance: number }[]>`
    select credits.balance(${userId}) as balance`;
  const ledger = await sql<{ kind: string; amount: number; balance_after: number }[]>`
    select kind, amount, balance_after from credits.ledger where user_id = ${userId} order by id`;
  const [{ stored }] = await sql<{ stored: number }[]>`
    select balance as stored from credits.balances where user_id = ${userId}`;
  return { balance, stored, ledger };
}

export async function inboxRow(sql: Sql, provider: string, eventId: string) {
  const rows = await sql<{ status: string; error: string | null; attempts: number }[]>`
    select status, error, attempts from billing.webhook_events
     where provider = ${provider} and event_id = ${eventId}`;
  return rows[0];
}

export async function inboxCount(sql: Sql): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from billing.webhook_events`;
  return n;
}
