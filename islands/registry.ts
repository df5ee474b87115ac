// Every island by name, for the server: it renders each one inside its mark (components/Island.tsx).
// The browser loads each island on its own from islands/client.ts, only on the pages that have it.
import { CheckoutWait } from "./CheckoutWait.tsx";
import { CreditStats } from "./CreditStats.tsx";
import { DailySignin } from "./DailySignin.tsx";
import { Grants } from "./Grants.tsx";
import { NavBalance } from "./NavBalance.tsx";
import { PricingToggle } from "./PricingToggle.tsx";
import { ProviderRedirect } from "./ProviderRedirect.tsx";
import { Transactions } from "./Transactions.tsx";
import { UsageChart } from "./UsageChart.tsx";

export const islands = {
  CheckoutWait,
  CreditStats,
  DailySignin,
  Grants,
  NavBalance,
  PricingToggle,
  ProviderRedirect,
  Transactions,
  UsageChart,
};

export type IslandName = keyof typeof islands;
export type IslandProps<N extends IslandName> = Parameters<(typeof islands)[N]>[0];

/** The stylesheets (files of static/) an island needs: a page links them only when it has it. */
export const ISLAND_STYLES: Partial<Record<IslandName, string[]>> = {
  UsageChart: ["uPlot.min.css"],
};
