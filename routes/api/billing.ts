// POST /api/billing/portal: the provider's customer portal for the signed-in user
// (docs/api.md#routes). One SQL call picks the customer; 404 when the user has never paid.
import { Hono } from "hono";
import type { AppEnv } from "../../utils/app_env.ts";
import type { Config } from "../../utils/config.ts";
import { HttpError } from "../../utils/errors.ts";
import type { Provider } from "../../utils/kinds.ts";
import { callCreem, creemClient } from "../../providers/creem_client.ts";
import { callStripe, stripeClient } from "../../providers/stripe_client.ts";
import { currentUser, requireUser } from "../../middlewares/session.ts";

/** A row of billing.portal_customer (sql/billing_checkout.sql). */
type PortalCustomer = { provider: Provider; customer_ref: string };

export const billing = new Hono<AppEnv>();
billing.use(requireUser);

billing.post("/portal", async (c) => {
  const [customer] = await c.var.sql<PortalCustomer[]>`
    select provider, customer_ref from billing.portal_customer(${currentUser(c).id})`;
  if (!customer) {
    throw new HttpError(404, "not_found", "no billing account yet: buy a plan or a package first");
  }
  const url = customer.provider === "stripe"
    ? await stripePortalUrl(c.var.config, customer.customer_ref)
    : await creemPortalUrl(c.var.config, customer.customer_ref);
  return c.json({ url });
});

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
