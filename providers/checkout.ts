// A provider's hosted pages for one user: the checkout of a price and the customer portal. The
// web routes (routes/api/checkout.ts, routes/api/billing.ts) and the server-to-server API
// (routes/api/v1/customers.ts) call these with the user they resolved, so both sell and show
// the same thing. One SQL call decides what is sold and to whom; the provider is then asked for
// the page. Nothing here sets credits: the webhooks grant them from the plans tables by price ID.
import type { Sql } from "../db/client.ts";
import type { Config } from "../utils/config.ts";
import { HttpError } from "../utils/errors.ts";
import type { Provider } from "../utils/kinds.ts";
import { callCreem, creemClient } from "./creem_client.ts";
import { callStripe, stripeClient } from "./stripe_client.ts";

/** A row of billing.checkout_target (sql/billing_checkout.sql). */
type CheckoutTarget = {
  price_id: string;
  provider: Provider;
  price_interval: "month" | "year" | "once";
  plan_id: string | null;
  package_id: string | null;
  /** null for an API customer created without one: the provider then asks for it. */
  email: string | null;
  customer_ref: string | null;
};

/** A row of billing.portal_customer (sql/billing_checkout.sql). */
type PortalCustomer = { provider: Provider; customer_ref: string };

/** The URL of a hosted checkout of priceId for the user, recorded for the webhooks to read. */
export async function startCheckout(
  sql: Sql,
  config: Config,
  userId: string,
  priceId: string,
): Promise<string> {
  const [target] = await sql<CheckoutTarget[]>`
    select * from billing.checkout_target(${userId}, ${priceId})`;
  const page = target.provider === "stripe"
    ? await stripeCheckout(config, userId, target)
    : await creemCheckout(config, userId, target);
  // Tally's own record of what this checkout sells: the webhook reads the price here when the
  // provider's event does not name it, and never trusts metadata for it.
  await sql`
    select billing.record_checkout(${target.provider}, ${page.ref}, ${userId}, ${target.price_id})`;
  return page.url;
}

/** The URL of the provider's customer portal for the user; 404 when the user has never paid. */
export async function portalUrl(sql: Sql, config: Config, userId: string): Promise<string> {
  const [customer] = await sql<PortalCustomer[]>`
    select provider, customer_ref from billing.portal_customer(${userId})`;
  if (!customer) {
    throw new HttpError(404, "not_found", "no billing account yet: buy a plan or a package first");
  }
  return customer.provider === "stripe"
    ? await stripePortalUrl(config, customer.customer_ref)
    : await creemPortalUrl(config, customer.customer_ref);
}

/** The provider's hosted page and its reference (Stripe session ID, Creem checkout ID). */
type CheckoutPage = { url: string; ref: string };

async function stripeCheckout(
  config: Config,
  userId: string,
  target: CheckoutTarget,
): Promise<CheckoutPage> {
  const stripe = stripeClient(config);
  // The user id travels on the session and on what outlives it (the subscription, the payment
  // intent), so every later webhook can name the user without a lookup by email.
  const metadata = { user_id: userId };
  const subscription = target.price_interval !== "once";
  const session = await callStripe("checkout session", () =>
    stripe.checkout.sessions.create({
      mode: subscription ? "subscription" : "payment",
      line_items: [{ price: target.price_id, quantity: 1 }],
      client_reference_id: userId,
      metadata,
      ...(subscription
        ? { subscription_data: { metadata } }
        : { payment_intent_data: { metadata } }),
      ...(target.customer_ref ? { customer: target.customer_ref } : {
        ...(target.email === null ? {} : { customer_email: target.email }),
        // A one-time payment makes no Stripe customer unless asked, and the billing portal
        // needs one.
        ...(subscription ? {} : { customer_creation: "always" as const }),
      }),
      success_url: `${config.appUrl}/checkout/success?session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: `${config.appUrl}/billing`,
    }));
  if (!session.url) {
    throw new HttpError(503, "unavailable", "Stripe returned a checkout session without a URL");
  }
  return { url: session.url, ref: session.id };
}

async function creemCheckout(
  config: Config,
  userId: string,
  target: CheckoutTarget,
): Promise<CheckoutPage> {
  const creem = creemClient(config);
  const result = await callCreem("checkout", () =>
    creem.checkouts.create({
      productId: target.price_id,
      // Unique per attempt: Creem echoes it back, and a retried click must not be a duplicate.
      requestId: `${userId}.${crypto.randomUUID()}`,
      units: 1,
      // Creem takes a customer either by id or by email, never both (neither: it asks).
      ...(target.customer_ref
        ? { customer: { id: target.customer_ref } }
        : target.email !== null
        ? { customer: { email: target.email } }
        : {}),
      successUrl: `${config.appUrl}/checkout/success`,
      metadata: { user_id: userId },
    }));
  if (!result.checkoutUrl) {
    throw new HttpError(503, "unavailable", "Creem returned a checkout without a URL");
  }
  return { url: result.checkoutUrl, ref: result.id };
}

async function stripePortalUrl(config: Config, customerRef: string): Promise<string> {
  const stripe = stripeClient(config);
  const session = await callStripe(
    "billing portal session",
    () =>
      stripe.billingPortal.sessions.create({
        customer: customerRef,
        return_url: `${config.appUrl}/billing`,
      }),
  );
  return session.url;
}

async function creemPortalUrl(config: Config, customerRef: string): Promise<string> {
  const creem = creemClient(config);
  const links = await callCreem(
    "customer billing link",
    () => creem.customers.generateBillingLinks({ customerId: customerRef }),
  );
  return links.customerPortalLink;
}
