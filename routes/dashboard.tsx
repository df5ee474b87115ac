// GET /dashboard: balance, what expires soon, the grants in spending order, the history, the
// usage chart and the daily sign-in. POST /daily-signin is the sign-in button without JavaScript.
import { Hono } from "hono";
import { z } from "zod";
import { formatCredits } from "../components/format.ts";
import type { CreditSummary, Me, TransactionPage, UsageDay } from "../components/types.ts";
import { TransactionsQuery } from "../utils/schemas.ts";
import type { AppEnv } from "../utils/app_env.ts";
import { Island, page } from "../utils/render.tsx";
import { currentUser, requirePageUser } from "../middlewares/session.ts";
import { viewerOf } from "./_helpers.ts";

type DashboardData = {
  me: Me;
  balance: number;
  credits: CreditSummary;
  transactions: TransactionPage;
  usage: UsageDay[];
  dailySignin: { credits: number; takenToday: boolean };
};

const DashboardQuery = TransactionsQuery.pick({ cursor: true, kind: true }).extend({
  kind: z.union([TransactionsQuery.shape.kind, z.literal("")]).optional(),
  signin: z.enum(["granted", "taken"]).optional(),
});

export const dashboard = new Hono<AppEnv>();
dashboard.use("/dashboard", requirePageUser);
dashboard.use("/daily-signin", requirePageUser);

dashboard.get("/dashboard", async (c) => {
  const query = DashboardQuery.parse(c.req.query());
  const kind = query.kind || null;
  const [row] = await c.var.sql<{ page: DashboardData }[]>`
    select app.page_dashboard(${currentUser(c).id}, ${kind}, ${query.cursor ?? null}) as page`;
  const data = row.page;
  const { credits } = data;
  return page(c, {
    title: "Dashboard",
    viewer: viewerOf(c, data.balance),
    children: (
      <>
        <h1>Your credits</h1>
        <div class="stats">
          <Island
            name="CreditStats"
            props={{
              balance: data.balance,
              expiringSoon: credits.expiringSoon,
              plan: data.me.plan,
            }}
          />
          <article>
            <Island
              name="DailySignin"
              props={{
                credits: data.dailySignin.credits,
                takenToday: data.dailySignin.takenToday,
                ...(query.signin === "granted"
                  ? {
                    flash: `You got ${
                      formatCredits(data.dailySignin.credits)
                    }. Come back tomorrow for more.`,
                  }
                  : {}),
              }}
            />
          </article>
        </div>

        <section aria-labelledby="usage-title">
          <h2 id="usage-title">Credits used per day</h2>
          <Island name="UsageChart" props={{ usage: data.usage }} />
        </section>

        <section aria-labelledby="grants-title">
          <h2 id="grants-title">Your credits, in the order they will be spent</h2>
          <Island name="Grants" props={{ grants: credits.grants }} />
        </section>

        <section aria-labelledby="history-title" id="history">
          <h2 id="history-title">History</h2>
          <Island name="Transactions" props={{ initial: data.transactions, kind: kind ?? "" }} />
        </section>
      </>
    ),
  });
});

dashboard.post("/daily-signin", async (c) => {
  const [row] = await c.var.sql<{ granted: number }[]>`
    select granted from credits.daily_signin(${currentUser(c).id})`;
  return c.redirect(`/dashboard?signin=${Number(row.granted) > 0 ? "granted" : "taken"}`, 303);
});
