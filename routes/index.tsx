// GET /: what Tally offers, then the pricing table from the plans file.
import { Hono } from "hono";
import { Pricing } from "../components/Pricing.tsx";
import type { Catalogue } from "../components/types.ts";
import type { AppEnv } from "../utils/app_env.ts";
import { page } from "../utils/render.tsx";
import { viewerOf } from "./_helpers.ts";

export const home = new Hono<AppEnv>();

home.get("/", async (c) => {
  const [row] = await c.var.sql<{ page: { balance: number | null; catalogue: Catalogue } }[]>`
    select app.page_pricing(${c.var.user?.id ?? null}) as page`;
  const interval = c.req.query("interval") === "year" ? "year" : "month";
  return page(c, {
    title: "Credits and subscriptions for your app",
    viewer: viewerOf(c, row.page.balance),
    children: (
      <>
        <hgroup>
          <h1>Pay for what you use, with credits</h1>
          <p>
            Every account starts with free credits each month. Subscribe for more, buy a lifetime
            plan, or top up with a credit package. Credits that expire soonest are spent first.
          </p>
        </hgroup>
        <Pricing catalogue={row.page.catalogue} interval={interval} signedIn={!!c.var.user} />
      </>
    ),
  });
});
