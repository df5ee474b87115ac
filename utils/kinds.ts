// The closed sets of values Tally stores, and the words a person reads for a ledger kind: the one
// TypeScript copy. The database defines each set as a domain (db/migrations, migration 0006), and
// sql/credits.sql has credits.grant_kinds() and credits.kind_label(); tests/utils/kinds_test.ts
// checks every list and label here against them, so the API's checks, the pages' labels and the
// stored procedures cannot drift apart.

/** credits.grant_kind: the kinds a grant may have (credits.grant accepts any of them). */
export const GRANT_KINDS = [
  "signup_gift",
  "free_monthly",
  "subscription_period",
  "subscription_monthly",
  "lifetime_monthly",
  "trial",
  "upgrade",
  "package",
  "daily_signin",
  "adjustment",
  "bonus",
] as const;
export type GrantKind = typeof GRANT_KINDS[number];

/** credits.entry_kind: what a ledger entry records, a grant of one of the kinds or credits taken. */
export const LEDGER_KINDS = [
  ...GRANT_KINDS,
  "usage",
  "expiry",
  "refund",
  "dispute",
  "reservation",
  "release",
  "usage_refund",
] as const;
export type LedgerKind = typeof LEDGER_KINDS[number];

/** billing.provider */
export const PROVIDERS = ["stripe", "creem"] as const;
export type Provider = typeof PROVIDERS[number];

/** billing.payment_kind */
export const PAYMENT_KINDS = ["package", "lifetime", "subscription"] as const;

/** billing.subscription_interval */
export const SUBSCRIPTION_INTERVALS = ["month", "year"] as const;

/** billing.event_status: an inbox event's outcome. */
export const EVENT_STATUSES = ["processed", "ignored", "failed"] as const;

/** credits.kind_label: the text of a ledger entry written without a description. */
export const KIND_LABELS: Record<LedgerKind, string> = {
  signup_gift: "Sign-up gift",
  free_monthly: "Free plan monthly credits",
  subscription_period: "Subscription credits",
  subscription_monthly: "Yearly plan monthly credits",
  lifetime_monthly: "Lifetime plan monthly credits",
  trial: "Trial credits",
  upgrade: "Plan upgrade credits",
  package: "Credit package",
  daily_signin: "Daily sign-in",
  adjustment: "Adjustment",
  bonus: "Bonus",
  usage: "Usage",
  expiry: "Credits expired",
  refund: "Refund",
  dispute: "Dispute",
  reservation: "Credits reserved",
  release: "Reserved credits released",
  usage_refund: "Usage refunded",
};

/** The label of a ledger kind; an unknown kind reads as itself, as credits.kind_label does. */
export function kindLabel(kind: string): string {
  return (KIND_LABELS as Record<string, string>)[kind] ?? kind;
}
