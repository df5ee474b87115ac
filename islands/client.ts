/// <reference lib="dom" />
// The browser entry (bundled into static/islands/ by `deno task build`): reads the props of every
// island of the page from the one <script type="application/json" id="island-props"> and
// hydrates each <div data-island-id="N"> that the server rendered (components/Island.tsx). Each
// island is imported on its own, so a page loads the code of the islands it has and no other.
import { type ComponentType, h, hydrate } from "preact";
import type { IslandName } from "./registry.ts";

type Loader = () => Promise<ComponentType<never>>;

const load = {
  CheckoutWait: () => import("./CheckoutWait.tsx").then((module) => module.CheckoutWait),
  CreditStats: () => import("./CreditStats.tsx").then((module) => module.CreditStats),
  DailySignin: () => import("./DailySignin.tsx").then((module) => module.DailySignin),
  Grants: () => import("./Grants.tsx").then((module) => module.Grants),
  NavBalance: () => import("./NavBalance.tsx").then((module) => module.NavBalance),
  PricingToggle: () => import("./PricingToggle.tsx").then((module) => module.PricingToggle),
  ProviderRedirect: () =>
    import("./ProviderRedirect.tsx").then((module) => module.ProviderRedirect),
  Transactions: () => import("./Transactions.tsx").then((module) => module.Transactions),
  UsageChart: () => import("./UsageChart.tsx").then((module) => module.UsageChart),
} satisfies Record<IslandName, Loader>;

type Mark = { name: IslandName; props: Record<string, unknown> };

async function hydrateOne(element: HTMLElement, mark: Mark | undefined): Promise<void> {
  if (!mark || !Object.hasOwn(load, mark.name)) {
    console.error(`unknown island ${mark?.name ?? element.dataset.islandId}`);
    return;
  }
  // The props were type-checked where the server rendered the mark (components/Island.tsx).
  const component = await load[mark.name]() as ComponentType<Record<string, unknown>>;
  hydrate(h(component, mark.props), element);
  // Until now a click on the server's HTML does what it does without JavaScript (a form post):
  // the mark says when the island has taken over (browser tests wait for it).
  element.setAttribute("data-hydrated", "");
}

function hydrateAll(): void {
  const data = document.getElementById("island-props")?.textContent ?? "[]";
  const marks = JSON.parse(data) as Mark[];
  for (const element of document.querySelectorAll<HTMLElement>("[data-island-id]")) {
    hydrateOne(element, marks[Number(element.dataset.islandId)]).catch((error) =>
      console.error(error)
    );
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", hydrateAll);
} else {
  hydrateAll();
}
