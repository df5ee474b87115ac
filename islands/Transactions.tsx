// The transaction history with a kind filter and paging through /api/me/transactions. Without
// JavaScript the filter is a GET form and "Older entries" a link, both served by /dashboard. When
// an island on the page changes the ledger (islands/_credits.ts), the first page is reloaded.
import { useEffect, useState } from "preact/hooks";
import { KIND_LABELS } from "../components/format.ts";
import { LedgerTable } from "../components/LedgerTable.tsx";
import type { Transaction, TransactionPage } from "../components/types.ts";
import { ledgerChanges } from "./_credits.ts";

export type TransactionsProps = { initial: TransactionPage; kind: string };

function olderHref(kind: string, cursor: string): string {
  const query = new URLSearchParams({ cursor });
  if (kind) query.set("kind", kind);
  return `/dashboard?${query}#history`;
}

export function Transactions({ initial, kind: initialKind }: TransactionsProps) {
  const [kind, setKind] = useState(initialKind);
  const [items, setItems] = useState<Transaction[]>(initial.items);
  const [nextCursor, setNextCursor] = useState(initial.nextCursor);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState("");

  async function load(newKind: string, cursor: string | null) {
    setBusy(true);
    setFailure("");
    try {
      const query = new URLSearchParams({ limit: "20" });
      if (newKind) query.set("kind", newKind);
      if (cursor) query.set("cursor", cursor);
      const response = await fetch(`/api/me/transactions?${query}`);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = await response.json() as TransactionPage;
      setItems(cursor ? (shown) => [...shown, ...page.items] : page.items);
      setNextCursor(page.nextCursor);
    } catch (error) {
      setFailure(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  }

  const changes = ledgerChanges.value;
  useEffect(() => {
    if (changes > 0) load(kind, null);
  }, [changes]);

  return (
    <div aria-busy={busy}>
      <form method="get" action="/dashboard#history" class="filter">
        <label>
          Kind
          <select
            name="kind"
            value={kind}
            onChange={(event) => {
              const value = (event.currentTarget as HTMLSelectElement).value;
              setKind(value);
              load(value, null);
            }}
          >
            <option value="">All kinds</option>
            {Object.entries(KIND_LABELS).map(([value, label]) => (
              <option key={value} value={value}>{label}</option>
            ))}
          </select>
        </label>
        <noscript>
          <button type="submit" class="secondary">Filter</button>
        </noscript>
      </form>
      {failure && <p role="alert">Could not load the history: {failure}</p>}
      {items.length === 0
        ? <p>No transactions{kind ? " of this kind" : ""} yet.</p>
        : <LedgerTable id="transactions" items={items} />}
      {nextCursor && (
        <a
          href={olderHref(kind, nextCursor)}
          role="button"
          class="secondary outline"
          onClick={(event) => {
            event.preventDefault();
            load(kind, nextCursor);
          }}
        >
          Older entries
        </a>
      )}
    </div>
  );
}
