// Ledger entries as a user sees them on the dashboard and an admin sees them on a user's page:
// one rendering, so both read an entry the same way.
import { DataTable } from "./DataTable.tsx";
import { formatDateTime, formatSigned, kindLabel } from "./format.ts";
import type { Transaction } from "./types.ts";

const LEDGER_COLUMNS = [
  { label: "When" },
  { label: "What" },
  { label: "Credits", numeric: true },
  { label: "Balance", numeric: true },
];

export function LedgerTable({ id, items }: { id: string; items: Transaction[] }) {
  return (
    <DataTable id={id} columns={LEDGER_COLUMNS}>
      {items.map((item) => (
        <tr key={item.id} data-kind={item.kind}>
          <td>{formatDateTime(item.createdAt)}</td>
          <td>
            {item.description}
            {item.description !== kindLabel(item.kind) && (
              <small>{` · ${kindLabel(item.kind)}`}</small>
            )}
          </td>
          <td class="number">{formatSigned(item.amount)}</td>
          <td class="number">{item.balanceAfter}</td>
        </tr>
      ))}
    </DataTable>
  );
}
