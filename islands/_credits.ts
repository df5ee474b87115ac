// The signed-in user's credits as the islands of a page share them (a helper, not an island). The
// server renders every figure; when an island changes the credits (the daily sign-in, a payment
// arriving) it says so here, and every island that shows a figure re-renders from these signals.
// No island writes into an element another island or the layout owns.
import { signal } from "@preact/signals";
import type { CreditSummary } from "../components/types.ts";

/** The balance once an island learnt a newer one; null while the server's figure holds. */
export const balance = signal<number | null>(null);
/** The grants and what expires soon, once refetched after a change; null until then. */
export const summary = signal<CreditSummary | null>(null);
/** Counts the ledger changes made on this page, so the history reloads its first page. */
export const ledgerChanges = signal(0);

/** A newer balance is known (e.g. polled from /api/me). */
export function showBalance(newBalance: number): void {
  balance.value = newBalance;
}

/**
 * The ledger changed: show the new balance now, then refetch the grants (/api/me/credits) and
 * have the history reload. A failed refetch leaves the server's figures, which a reload renews.
 */
export async function creditsChanged(newBalance: number): Promise<void> {
  showBalance(newBalance);
  ledgerChanges.value += 1;
  try {
    const response = await fetch("/api/me/credits");
    if (!response.ok) return;
    const fresh = await response.json() as CreditSummary;
    summary.value = fresh;
    balance.value = fresh.balance;
  } catch {
    // Offline for a moment: the balance above is right, the grants are as the server rendered.
  }
}
