// POST /api/checkout {priceId}: a hosted checkout page at the price's provider
// (docs/api.md#routes). One SQL call decides what is sold and to whom; the provider is then asked
// for the page. Nothing here sets credits: the webhooks grant them from the plans tables by price
// ID.
import { Hono } from "hono";
import type { AppEnv } from "../../utils/app_env.ts";
import type { Config } from "../../utils/config.ts";
import { HttpError } from "../../utils/errors.ts";
import type { Provider } from "../../utils/kinds.ts";
import { callCreem, creemClient } from "../../providers/creem_client.ts";
import { callStripe, stripeClient } from "../../providers/stripe_client.ts";
import { currentUser, requireUser } from "../../middlewares/session.ts";
import { CheckoutBody } from "../../utils/schemas.ts";
import { jsonBody } from "../../utils/validation.ts";

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

export const checkout = new Hono<AppEnv>();
checkout.use(requireUser);

checkout.post("/", async (c) => {
  const body = await jsonBody(c, CheckoutBody);
  const user = currentUser(c);
  const [target] = await c.var.sql<CheckoutTarget[]>`
    select * from billing.checkout_target(${user.id}, ${body.priceId})`;
  const page = target.provider === "stripe"
    ? await stripeCheckout(c.var.config, user.id, target)
    : await creemCheckout(c.var.config, user.id, target);
  // Tally's own record of what this checkout sells: the webhook reads the price here when the
  // provider's event does not name it, and never trusts metadata for it.
  await c.var.sql`
    select billing.record_checkout(${target.provider}, ${page.ref}, ${user.id}, ${target.price_id})`;
  return c.json({ url: page.url });
});

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
