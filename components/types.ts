// The shapes of the JSON that the page functions of sql/app_pages.sql and
// sql/credits_statements.sql return.
import type { Provider } from "../utils/kinds.ts";

export type Price = {
  provider: Provider;
  priceId: string;
  interval: "month" | "year" | "once";
  amount: number;
};

export type Plan = {
  id: string;
  name: string;
  kind: "free" | "subscription" | "lifetime";
  monthlyCredits: number;
  creditsExpireInDays: number | null;
  trialCredits: number | null;
  prices: Price[];
};

export type CreditPackage = {
  id: string;
  name: string;
  credits: number;
  expiresInDays: number | null;
  prices: Price[];
};

export type Catalogue = { currency: string; plans: Plan[]; packages: CreditPackage[] };

export type Transaction = {
  id: number;
  kind: string;
  amount: number;
  balanceAfter: number;
  description: string;
  createdAt: string;
};

export type TransactionPage = { items: Transaction[]; nextCursor: string | null };

export type Grant = {
  id: number;
  kind: string;
  amount: number;
  remaining: number;
  expiresAt: string | null;
  createdAt: string;
};

export type CreditSummary = {
  balance: number;
  expiringSoon: { amount: number; before: string };
  grants: Grant[];
};

export type Me = {
  id: string;
  /** null for an API customer created without one. */
  email: string | null;
  name: string;
  plan: { id: string; kind: string; status: string; renewsAt: string | null };
  balance: number;
};

export type UsageDay = { day: string; used: number };
