// POST /api/checkout {priceId}: a hosted checkout page at the price's provider for the signed-in
// user (docs/api.md#routes); the page is made by providers/checkout.ts, which the
// server-to-server API shares.
import { Hono } from "hono";
import type { AppEnv } from "../../utils/app_env.ts";
import { startCheckout } from "../../providers/checkout.ts";
import { currentUser, requireUser } from "../../middlewares/session.ts";
import { CheckoutBody } from "../../utils/schemas.ts";
import { jsonBody } from "../../utils/validation.ts";

export const checkout = new Hono<AppEnv>();
checkout.use(requireUser);

checkout.post("/", async (c) => {
  const body = await jsonBody(c, CheckoutBody);
  const url = await startCheckout(c.var.sql, c.var.config, currentUser(c).id, body.priceId);
  return c.json({ url });
});
