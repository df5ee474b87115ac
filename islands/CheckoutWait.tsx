// After the provider's checkout: waits for the webhook to land by polling /api/me, then shows
// what arrived and the new balance. After timeoutMs it says the payment is still being processed;
// it never shows an error page.
import { useEffect, useState } from "preact/hooks";
import { formatCredits, formatSigned } from "../components/format.ts";
import type { Transaction, TransactionPage } from "../components/types.ts";
import { showBalance } from "./_credits.ts";

export type Arrival = { kind: string; amount: number; description: string; createdAt: string };

export type CheckoutWaitProps = {
  balance: number;
  arrivals: Arrival[];
  since: string;
  timeoutMs: number;
  pollMs: number;
};

const PURCHASE_KINDS = new Set([
  "package",
  "subscription_period",
  "subscription_monthly",
  "lifetime_monthly",
  "trial",
  "upgrade",
]);

type State =
  | { kind: "waiting" }
  | { kind: "arrived"; balance: number; arrivals: Arrival[] }
  | { kind: "slow" };

async function arrivalsSince(since: string): Promise<Arrival[]> {
  const response = await fetch("/api/me/transactions?limit=20");
  if (!response.ok) return [];
  const page = await response.json() as TransactionPage;
  return page.items.filter((item: Transaction) =>
    item.amount > 0 && PURCHASE_KINDS.has(item.kind) && item.createdAt >= since
  );
}

export function CheckoutWait({ balance, arrivals, since, timeoutMs, pollMs }: CheckoutWaitProps) {
  const [state, setState] = useState<State>(
    arrivals.length > 0 ? { kind: "arrived", balance, arrivals } : { kind: "waiting" },
  );

  useEffect(() => {
    if (state.kind !== "waiting") return;
    const started = Date.now();
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      if (stopped) return;
      try {
        const response = await fetch("/api/me");
        if (response.ok) {
          const me = await response.json() as { balance: number };
          const found = me.balance !== balance ? await arrivalsSince(since) : [];
          if (found.length > 0) {
            showBalance(me.balance);
            setState({ kind: "arrived", balance: me.balance, arrivals: found });
            return;
          }
        }
      } catch {
        // A network blip while waiting is not worth an error: the next poll tries again.
      }
      if (Date.now() - started >= timeoutMs) {
        setState({ kind: "slow" });
        return;
      }
      timer = setTimeout(poll, pollMs);
    };
    timer = setTimeout(poll, pollMs);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);

  if (state.kind === "arrived") {
    return (
      <section role="status" aria-live="polite" id="checkout-result">
        <h2>Your credits have arrived</h2>
        <ul>
          {state.arrivals.map((arrival) => (
            <li key={`${arrival.createdAt}-${arrival.kind}`}>
              {arrival.description}: <strong>{formatSigned(arrival.amount)}</strong> credits
            </li>
          ))}
        </ul>
        <p>
          Your balance is now <strong id="new-balance">{formatCredits(state.balance)}</strong>.
        </p>
        <a href="/dashboard" role="button">Go to the dashboard</a>
      </section>
    );
  }
  if (state.kind === "slow") {
    return (
      <section role="status" aria-live="polite" id="checkout-result">
        <h2>Your payment is still being processed</h2>
        <p>
          Thank you! The payment provider has not confirmed it yet. Your credits will appear on your
          {" "}
          <a href="/dashboard">dashboard</a> as soon as it does; there is nothing else to do.
        </p>
      </section>
    );
  }
  return (
    <section role="status" aria-live="polite" aria-busy="true" id="checkout-result">
      <h2>Thank you! Waiting for the payment to be confirmed…</h2>
      <p>This usually takes a few seconds. This page updates by itself.</p>
      <noscript>
        <p>
          Reload this page in a moment, or open your <a href="/dashboard">dashboard</a>.
        </p>
      </noscript>
    </section>
  );
}
