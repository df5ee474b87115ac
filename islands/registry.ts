// Every island by name: the server marks where each one goes (utils/render.tsx), and
// islands/client.ts hydrates the marks with these same components.
import { CheckoutWait } from "./CheckoutWait.tsx";
import { DailySignin } from "./DailySignin.tsx";
import { PricingToggle } from "./PricingToggle.tsx";
import { ProviderRedirect } from "./ProviderRedirect.tsx";
import { Transactions } from "./Transactions.tsx";
import { UsageChart } from "./UsageChart.tsx";

export const islands = {
  CheckoutWait,
  DailySignin,
  PricingToggle,
  ProviderRedirect,
  Transactions,
  UsageChart,
};

export type IslandName = keyof typeof islands;
export type IslandProps<N extends IslandName> = Parameters<(typeof islands)[N]>[0];
