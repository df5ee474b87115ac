// GET /billing: the current plan, its status and renewal or end date, "manage billing" (the
// provider's customer portal), upgrade choices and credit packages to buy.
import { Hono } from "hono";
import { DataTable } from "../components/DataTable.tsx";
import { formatCredits, formatDate, formatMoney } from "../components/format.ts";
import type { Catalogue, Me, Plan } from "../components/types.ts";
import type { AppEnv } from "../utils/app_env.ts";
import { Island, page } from "../utils/render.tsx";
import { Pricing } from "../components/Pricing.tsx";
import { currentUser, requirePageUser } from "../middlewares/session.ts";
import { viewerOf } from "./_helpers.ts";

type Subscription = {
  provider: string;
  planId: string;
  interval: "month" | "year";
  status: string;
  currentPeriodEnd: string;
  cancelAtPeriodEnd: boolean;
  canceledAt: string | null;
};

type Payment = {
  id: number;
  kind: string;
  priceId: string | null;
  amount: number;
  currency: string;
  paidAt: string;
  refundedAmount: number;
  disputed: boolean;
};

type BillingData = {
  me: Me;
  balance: number;
  catalogue: Catalogue;
  subscription: Subscription | null;
  payments: Payment[];
  customers: string[];
};

function planName(catalogue: Catalogue, id: string): string {
  return catalogue.plans.find((plan) => plan.id === id)?.name ?? id;
}

function PlanSummary({ data }: { data: BillingData }) {
  const { me, subscription, catalogue } = data;
  const current: Plan | undefined = catalogue.plans.find((plan) => plan.id === me.plan.id);
  const endsAt = subscription && subscription.planId === me.plan.id &&
      (subscription.cancelAtPeriodEnd || subscription.canceledAt)
    ? subscription.currentPeriodEnd
    : null;
  return (
    <article id="current-plan">
      <h2>Current plan: {planName(catalogue, me.plan.id)}</h2>
      <dl>
        <dt>Status</dt>
        <dd id="plan-status">{me.plan.status}</dd>
        {me.plan.kind === "subscription" && subscription && (
          <>
            <dt>Billed</dt>
            <dd>
              {subscription.interval === "year" ? "yearly" : "monthly"} via {subscription.provider}
            </dd>
          </>
        )}
        <dt>{endsAt ? "Ends" : me.plan.kind === "free" ? "Next free credits" : "Renews"}</dt>
        <dd>
          {endsAt
            ? formatDate(endsAt)
            : me.plan.renewsAt
            ? formatDate(me.plan.renewsAt)
            : me.plan.kind === "lifetime"
            ? "never: it is yours for good"
            : "not scheduled"}
        </dd>
        {current && (
          <>
            <dt>Credits</dt>
            <dd>{formatCredits(current.monthlyCredits)} a month</dd>
          </>
        )}
      </dl>
      {data.customers.length > 0
        ? (
          <>
            <Island
              name="ProviderRedirect"
              props={{
                endpoint: "/api/billing/portal",
                body: {},
                label: "Manage billing",
                autoStart: false,
              }}
            />
            <noscript>
              <p>Managing billing opens the payment provider's portal, which needs JavaScript.</p>
            </noscript>
          </>
        )
        : <p>You have not paid for anything yet, so there is no billing account to manage.</p>}
    </article>
  );
}

export const billingPages = new Hono<AppEnv>();
billingPages.use("/billing", requirePageUser);

billingPages.get("/billing", async (c) => {
  const [row] = await c.var.sql<{ page: BillingData }[]>`
    select app.page_billing(${currentUser(c).id}) as page`;
  const data = row.page;
  const current = data.catalogue.plans.find((plan) => plan.id === data.me.plan.id);
  const upgrades: Catalogue = {
    ...data.catalogue,
    plans: data.catalogue.plans.filter((plan) =>
      plan.kind !== "free" && plan.monthlyCredits > (current?.monthlyCredits ?? 0)
    ),
  };
  return page(c, {
    title: "Billing",
    viewer: viewerOf(c, data.balance),
    children: (
      <>
        <h1>Billing</h1>
        <PlanSummary data={data} />
        <section aria-label="Upgrade or top up">
          {upgrades.plans.length === 0 && <p>You are on the largest plan.</p>}
          <Pricing
            catalogue={upgrades}
            interval={c.req.query("interval") === "year" ? "year" : "month"}
            signedIn
          />
        </section>
        {data.payments.length > 0 && (
          <section aria-labelledby="payments-title">
            <h2 id="payments-title">Payments</h2>
            <DataTable
              id="payments"
              columns={[
                { label: "Date" },
                { label: "What" },
                { label: "Amount", numeric: true },
                { label: "Refunds" },
              ]}
            >
              {data.payments.map((payment) => (
                <tr key={payment.id}>
                  <td>{formatDate(payment.paidAt)}</td>
                  <td>{payment.kind}{payment.priceId ? ` (${payment.priceId})` : ""}</td>
                  <td class="number">{formatMoney(payment.amount, payment.currency)}</td>
                  <td>
                    {payment.disputed
                      ? "disputed"
                      : payment.refundedAmount > 0
                      ? `${formatMoney(payment.refundedAmount, payment.currency)} refunded`
                      : ""}
                  </td>
                </tr>
              ))}
            </DataTable>
          </section>
        )}
      </>
    ),
  });
});
