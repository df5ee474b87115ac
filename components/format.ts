// Formatting shared by server-rendered pages and islands. Always UTC, so the server's and the
// browser's output agree and hydration changes nothing.
const dateFormat = new Intl.DateTimeFormat("en", { dateStyle: "medium", timeZone: "UTC" });
const dateTimeFormat = new Intl.DateTimeFormat("en", {
  dateStyle: "medium",
  timeStyle: "short",
  timeZone: "UTC",
});
const numberFormat = new Intl.NumberFormat("en");

export function formatDate(iso: string | null | undefined): string {
  return iso ? dateFormat.format(new Date(iso)) : "never";
}

export function formatDateTime(iso: string | null | undefined): string {
  return iso ? `${dateTimeFormat.format(new Date(iso))} UTC` : "";
}

export function formatCredits(amount: number): string {
  return `${numberFormat.format(amount)} ${Math.abs(amount) === 1 ? "credit" : "credits"}`;
}

export function formatSigned(amount: number): string {
  return amount > 0 ? `+${numberFormat.format(amount)}` : numberFormat.format(amount);
}

/** Amounts are in the currency's minor unit (contract section 3). */
export function formatMoney(minorUnits: number, currency: string): string {
  const format = new Intl.NumberFormat("en", {
    style: "currency",
    currency: currency.toUpperCase(),
  });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(minorUnits / 10 ** digits);
}

export const KIND_LABELS: Record<string, string> = {
  signup_gift: "Sign-up gift",
  free_monthly: "Free plan",
  subscription_period: "Subscription",
  subscription_monthly: "Yearly plan, monthly",
  lifetime_monthly: "Lifetime, monthly",
  trial: "Trial",
  upgrade: "Upgrade",
  package: "Credit package",
  daily_signin: "Daily sign-in",
  adjustment: "Adjustment",
  bonus: "Bonus",
  usage: "Usage",
  expiry: "Expired",
  refund: "Refund",
  dispute: "Dispute",
};

export function kindLabel(kind: string): string {
  return KIND_LABELS[kind] ?? kind;
}
