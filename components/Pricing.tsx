// The pricing table from the plans file: plans, subscriptions (with the interval toggle island)
// and credit packages. Shown on the home page (routes/index.tsx) and on /billing.
import { formatCredits, formatMoney } from "./format.ts";
import { checkoutHref, PriceCard } from "./PriceCard.tsx";
import type { Catalogue, CreditPackage, Plan } from "./types.ts";
import { Island } from "../utils/render.tsx";

function expiryNote(days: number | null): string {
  return days ? `credits last ${days} days` : "credits never expire";
}

function BuyButton({ priceId, name }: { priceId: string | undefined; name: string }) {
  return priceId ? <a href={checkoutHref(priceId)} role="button">Buy {name}</a> : null;
}

function FreeCard({ plan, signedIn }: { plan: Plan; signedIn: boolean }) {
  return (
    <PriceCard
      sells="plan"
      id={plan.id}
      name={plan.name}
      actions={signedIn
        ? <a href="/dashboard" role="button" class="secondary">Your dashboard</a>
        : <a href="/signup" role="button">Start free</a>}
    >
      <p>
        <strong>{formatCredits(plan.monthlyCredits)}</strong> every month;{" "}
        {expiryNote(plan.creditsExpireInDays)}.
      </p>
      <p class="price">Free</p>
    </PriceCard>
  );
}

function LifetimeCard({ plan, currency }: { plan: Plan; currency: string }) {
  const [price] = plan.prices;
  return (
    <PriceCard
      sells="plan"
      id={plan.id}
      name={plan.name}
      actions={<BuyButton priceId={price?.priceId} name={plan.name} />}
    >
      <p>
        <strong>{formatCredits(plan.monthlyCredits)}</strong> every month, for good;{" "}
        {expiryNote(plan.creditsExpireInDays)}.
      </p>
      {price && (
        <p class="price">
          {formatMoney(price.amount, currency)} <small>once</small>
        </p>
      )}
    </PriceCard>
  );
}

function PackageCard({ pack, currency }: { pack: CreditPackage; currency: string }) {
  const [price] = pack.prices;
  return (
    <PriceCard
      sells="package"
      id={pack.id}
      name={pack.name}
      actions={<BuyButton priceId={price?.priceId} name={pack.name} />}
    >
      <p>
        <strong>{formatCredits(pack.credits)}</strong>; {expiryNote(pack.expiresInDays)}.
      </p>
      {price && <p class="price">{formatMoney(price.amount, currency)}</p>}
    </PriceCard>
  );
}

export function Pricing(
  { catalogue, interval, signedIn }: {
    catalogue: Catalogue;
    interval: "month" | "year";
    signedIn: boolean;
  },
) {
  const byKind = (kind: Plan["kind"]) => catalogue.plans.filter((plan) => plan.kind === kind);
  const subscriptions = byKind("subscription");
  return (
    <>
      <section aria-labelledby="plans-title">
        <h2 id="plans-title">Plans</h2>
        <div class="cards">
          {byKind("free").map((plan) => <FreeCard key={plan.id} plan={plan} signedIn={signedIn} />)}
          {byKind("lifetime").map((plan) => (
            <LifetimeCard key={plan.id} plan={plan} currency={catalogue.currency} />
          ))}
        </div>
      </section>
      {subscriptions.length > 0 && (
        <section aria-labelledby="subscriptions-title">
          <h2 id="subscriptions-title">Subscriptions</h2>
          <Island
            name="PricingToggle"
            props={{
              plans: subscriptions,
              currency: catalogue.currency,
              initialInterval: interval,
            }}
          />
        </section>
      )}
      {catalogue.packages.length > 0 && (
        <section aria-labelledby="packages-title">
          <h2 id="packages-title">Credit packages</h2>
          <p>Top up whenever you need to. Buying a package does not change your plan.</p>
          <div class="cards">
            {catalogue.packages.map((pack) => (
              <PackageCard key={pack.id} pack={pack} currency={catalogue.currency} />
            ))}
          </div>
        </section>
      )}
    </>
  );
}
