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

/** Amounts are in the currency's minor unit (docs/plans-file.md). */
export function formatMoney(minorUnits: number, currency: string): string {
  const format = new Intl.NumberFormat("en", {
    style: "currency",
    currency: currency.toUpperCase(),
  });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(minorUnits / 10 ** digits);
}

// A ledger kind's label: the words credits.kind_label gives an entry without a description.
/**
 * How the admin pages name a user: the email, else (an API customer created without one) the
 * app's externalId, else a dash.
 */
export function userLabel(user: { email: string | null; externalId?: string | null }): string {
  return user.email ?? user.externalId ?? "—";
}

export { KIND_LABELS, kindLabel } from "../utils/kinds.ts";
