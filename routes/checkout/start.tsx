// GET /checkout/start?priceId=: the step between a "buy" button and the provider's checkout
// (signed-out visitors sign up first and come back here).
import { Hono } from "hono";
import { currentUser } from "../../middlewares/session.ts";
import type { AppEnv } from "../../utils/app_env.ts";
import { Island, page } from "../../utils/render.tsx";
import { CheckoutBody } from "../../utils/schemas.ts";
import { viewerOf } from "../_helpers.ts";

export const checkoutStart = new Hono<AppEnv>();

checkoutStart.get("/checkout/start", async (c) => {
  const url = new URL(c.req.url);
  if (!c.var.user) {
    return c.redirect(`/signup?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
  }
  const { priceId } = CheckoutBody.parse({ priceId: c.req.query("priceId") ?? "" });
  const [row] = await c.var.sql<{ balance: number }[]>`
    select credits.balance(${currentUser(c).id}) as balance`;
  return page(c, {
    title: "Checkout",
    viewer: viewerOf(c, Number(row.balance)),
    children: (
      <article>
        <h1>Continue to payment</h1>
        <p>You will pay on the payment provider's secure page, then come back here.</p>
        <Island
          name="ProviderRedirect"
          props={{
            endpoint: "/api/checkout",
            body: { priceId },
            label: "Continue to payment",
            autoStart: c.req.query("auto") === "1",
          }}
        />
        <noscript>
          <p>The payment page needs JavaScript. Please enable it to continue.</p>
        </noscript>
        <p>
          <a href="/">Back to pricing</a>
        </p>
      </article>
    ),
  });
});
