// Hands the signed-in user to a provider's hosted page: the checkout (POST /api/checkout) or the
// customer portal (POST /api/billing/portal). Those pages need JavaScript themselves, so this
// island does too; the page around it says so in a <noscript>.
import { useEffect, useState } from "preact/hooks";

export type ProviderRedirectProps = {
  endpoint: "/api/checkout" | "/api/billing/portal";
  body: Record<string, string>;
  label: string;
  autoStart: boolean;
};

export function ProviderRedirect({ endpoint, body, label, autoStart }: ProviderRedirectProps) {
  const [state, setState] = useState<{ busy: boolean; failure: string }>({
    busy: false,
    failure: "",
  });

  async function start(event?: Event) {
    event?.preventDefault();
    setState({ busy: true, failure: "" });
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json() as { url?: string; message?: string };
      if (!response.ok || !answer.url) {
        throw new Error(answer.message ?? `HTTP ${response.status}`);
      }
      location.assign(answer.url);
    } catch (error) {
      setState({ busy: false, failure: error instanceof Error ? error.message : String(error) });
    }
  }

  useEffect(() => {
    if (autoStart) start();
  }, []);

  return (
    <div>
      {state.failure && <p role="alert">That did not work: {state.failure}</p>}
      <button type="button" onClick={start} aria-busy={state.busy} disabled={state.busy}>
        {label}
      </button>
    </div>
  );
}
