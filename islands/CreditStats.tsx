// The Balance and "Expiring soon" cards of the dashboard, re-rendered when an island on the page
// changes the credits (islands/_credits.ts).
import { formatCredits, formatDate } from "../components/format.ts";
import type { CreditSummary, Me } from "../components/types.ts";
import { balance, summary } from "./_credits.ts";

export type CreditStatsProps = {
  balance: number;
  expiringSoon: CreditSummary["expiringSoon"];
  plan: Me["plan"];
};

export function CreditStats(props: CreditStatsProps) {
  const expiringSoon = summary.value?.expiringSoon ?? props.expiringSoon;
  const { plan } = props;
  return (
    <>
      <article>
        <h2>Balance</h2>
        <p class="price" id="balance">{formatCredits(balance.value ?? props.balance)}</p>
        <small>
          Plan: {plan.id} ({plan.status})
          {plan.renewsAt ? `, renews ${formatDate(plan.renewsAt)}` : ""}
        </small>
      </article>
      <article>
        <h2>Expiring soon</h2>
        <p class="price" id="expiring-soon">{formatCredits(expiringSoon.amount)}</p>
        <small>before {formatDate(expiringSoon.before)}</small>
      </article>
    </>
  );
}
