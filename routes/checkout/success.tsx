// GET /checkout/success: where the provider returns the buyer; an island waits there for the
// webhook.
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../utils/app_env.ts";
import { Island, page } from "../../utils/render.tsx";
import { currentUser } from "../../middlewares/session.ts";
import type { Arrival } from "../../islands/CheckoutWait.tsx";
import { viewerOf } from "../_helpers.ts";

// A purchase completed longer ago than this is not what the buyer is waiting for.
const ARRIVALS_WINDOW_MS = 30 * 60 * 1000;
const WAIT_TIMEOUT_MS = 60 * 1000;
const POLL_MS = 2000;

const SuccessQuery = z.object({ wait: z.coerce.number().int().min(1000).max(60000).optional() });

export const checkoutSuccess = new Hono<AppEnv>();

checkoutSuccess.get("/checkout/success", async (c) => {
  const url = new URL(c.req.url);
  if (!c.var.user) {
    return c.redirect(`/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
  }
  const query = SuccessQuery.parse(c.req.query());
  const since = new Date(Date.now() - ARRIVALS_WINDOW_MS).toISOString();
  const [row] = await c.var.sql<{ status: { balance: number; arrivals: Arrival[] } }[]>`
    select app.page_checkout_status(${currentUser(c).id}, ${since}) as status`;
  return page(c, {
    title: "Thank you",
    viewer: viewerOf(c, row.status.balance),
    children: (
      <>
        <h1>Thank you for your purchase</h1>
        <Island
          name="CheckoutWait"
          props={{
            balance: row.status.balance,
            arrivals: row.status.arrivals,
            since,
            timeoutMs: query.wait ?? WAIT_TIMEOUT_MS,
            pollMs: POLL_MS,
          }}
        />
      </>
    ),
  });
});
