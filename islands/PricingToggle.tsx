// The subscription plans of the pricing table with a monthly/yearly switch. Without JavaScript the
// switch is a GET form that reloads the page with ?interval=.
import { useState } from "preact/hooks";
import { formatCredits, formatMoney } from "../components/format.ts";
import { checkoutHref, PriceCard } from "../components/PriceCard.tsx";
import type { Plan, Price } from "../components/types.ts";

export type PricingToggleProps = {
  plans: Plan[];
  currency: string;
  initialInterval: "month" | "year";
};

function providerName(provider: Price["provider"]): string {
  return provider === "stripe" ? "Stripe" : "Creem";
}

export function PricingToggle({ plans, currency, initialInterval }: PricingToggleProps) {
  const [interval, setInterval] = useState(initialInterval);
  const hasYearly = plans.some((plan) => plan.prices.some((price) => price.interval === "year"));
  return (
    <div>
      {hasYearly && (
        <form method="get" action="/" class="interval-switch">
          <fieldset role="group" aria-label="Billing interval">
            {(["month", "year"] as const).map((value) => (
              <label key={value}>
                <input
                  type="radio"
                  name="interval"
                  value={value}
                  checked={interval === value}
                  onChange={() => setInterval(value)}
                />
                {value === "month" ? "Monthly" : "Yearly"}
              </label>
            ))}
          </fieldset>
          <noscript>
            <button type="submit" class="secondary">Show prices</button>
          </noscript>
        </form>
      )}
      <div class="cards">
        {plans.map((plan) => {
          const prices = plan.prices.filter((price) => price.interval === interval);
          const monthly = plan.prices.find((price) => price.interval === "month");
          return (
            <PriceCard
              key={plan.id}
              sells="plan"
              id={plan.id}
              name={plan.name}
              actions={prices.map((price, index) => (
                <a
                  key={price.priceId}
                  role="button"
                  class={index === 0 ? "" : "secondary outline"}
                  href={checkoutHref(price.priceId)}
                >
                  {index === 0
                    ? `Subscribe to ${plan.name}`
                    : `or pay with ${providerName(price.provider)}`}
                </a>
              ))}
            >
              <p>
                <strong>{formatCredits(plan.monthlyCredits)}</strong> every month
                {plan.trialCredits ? `, ${formatCredits(plan.trialCredits)} during the trial` : ""}
              </p>
              {prices.length === 0
                ? <p>Not available {interval === "year" ? "yearly" : "monthly"}.</p>
                : (
                  <p class="price" data-interval={interval}>
                    {formatMoney(prices[0].amount, currency)}
                    <small>/{interval === "year" ? "year" : "month"}</small>
                    {interval === "year" && monthly && monthly.amount * 12 > prices[0].amount && (
                      <small class="saving">
                        save {formatMoney(monthly.amount * 12 - prices[0].amount, currency)}
                      </small>
                    )}
                  </p>
                )}
            </PriceCard>
          );
        })}
      </div>
    </div>
  );
}
