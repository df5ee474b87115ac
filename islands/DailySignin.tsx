// The daily sign-in button. Without JavaScript it is a plain form posting to /daily-signin.
import { useState } from "preact/hooks";
import { formatCredits } from "../components/format.ts";

export type DailySigninProps = { credits: number; takenToday: boolean; flash?: string };

type State = { kind: "ready" } | { kind: "busy" } | { kind: "granted"; granted: number } | {
  kind: "taken";
} | { kind: "failed"; message: string };

export function updateNavBalance(balance: number): void {
  const element = document.getElementById("nav-balance");
  if (element) element.textContent = formatCredits(balance);
}

export function DailySignin({ credits, takenToday, flash }: DailySigninProps) {
  const [state, setState] = useState<State>(takenToday ? { kind: "taken" } : { kind: "ready" });
  if (credits <= 0) return null;

  async function claim(event: Event) {
    event.preventDefault();
    setState({ kind: "busy" });
    try {
      const response = await fetch("/api/me/daily-signin", { method: "POST" });
      const body = await response.json() as {
        granted?: number;
        balance?: number;
        message?: string;
      };
      if (!response.ok) throw new Error(body.message ?? `HTTP ${response.status}`);
      updateNavBalance(body.balance ?? 0);
      setState(body.granted ? { kind: "granted", granted: body.granted } : { kind: "taken" });
    } catch (error) {
      setState({ kind: "failed", message: error instanceof Error ? error.message : String(error) });
    }
  }

  return (
    <section aria-labelledby="daily-signin-title" class="daily-signin">
      <h2 id="daily-signin-title">Daily sign-in</h2>
      <p role="status" aria-live="polite">
        {state.kind === "granted"
          ? `You got ${formatCredits(state.granted)}. Come back tomorrow for more.`
          : state.kind === "taken"
          ? flash ?? "You have signed in today: come back tomorrow."
          : state.kind === "failed"
          ? `That did not work: ${state.message}`
          : `Sign in once a day for ${formatCredits(credits)}.`}
      </p>
      {(state.kind === "ready" || state.kind === "busy" || state.kind === "failed") && (
        <form method="post" action="/daily-signin" onSubmit={claim}>
          <button type="submit" aria-busy={state.kind === "busy"} disabled={state.kind === "busy"}>
            Claim {formatCredits(credits)}
          </button>
        </form>
      )}
    </section>
  );
}
