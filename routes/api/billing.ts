// POST /api/billing/portal: the provider's customer portal for the signed-in user
// (docs/api.md#routes), made by providers/checkout.ts; 404 when the user has never paid.
import { Hono } from "hono";
import type { AppEnv } from "../../utils/app_env.ts";
import { portalUrl } from "../../providers/checkout.ts";
import { currentUser, requireUser } from "../../middlewares/session.ts";

export const billing = new Hono<AppEnv>();
billing.use(requireUser);

billing.post("/portal", async (c) => {
  const url = await portalUrl(c.var.sql, c.var.config, currentUser(c).id);
  return c.json({ url });
});
