// The daily sign-in button. Without JavaScript it is a plain form posting to /daily-signin. A claim
// tells the page's other islands through islands/_credits.ts, and focus moves to the result.
import { useEffect, useRef, useState } from "preact/hooks";
import { formatCredits } from "../components/format.ts";
import { creditsChanged } from "./_credits.ts";

export type DailySigninProps = { credits: number; takenToday: boolean; flash?: string };

type State = { kind: "ready" } | { kind: "busy" } | { kind: "granted"; granted: number } | {
  kind: "taken";
} | { kind: "failed"; message: string };

export function DailySignin({ credits, takenToday, flash }: DailySigninProps) {
  const [state, setState] = useState<State>(takenToday ? { kind: "taken" } : { kind: "ready" });
  const result = useRef<HTMLParagraphElement>(null);
  const [claimed, setClaimed] = useState(0);
  // The button goes away with a claim: focus goes to what it said instead of falling to <body>.
  useEffect(() => {
    if (claimed > 0) result.current?.focus();
  }, [claimed]);
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
      setState(body.granted ? { kind: "granted", granted: body.granted } : { kind: "taken" });
      setClaimed((count) => count + 1);
      if (body.granted && body.balance !== undefined) void creditsChanged(body.balance);
    } catch (error) {
      setState({ kind: "failed", message: error instanceof Error ? error.message : String(error) });
      setClaimed((count) => count + 1);
    }
  }

  return (
    <section aria-labelledby="daily-signin-title" class="daily-signin">
      <h2 id="daily-signin-title">Daily sign-in</h2>
      <p id="daily-signin-result" role="status" aria-live="polite" tabIndex={-1} ref={result}>
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
