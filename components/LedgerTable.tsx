// Ledger entries as a user sees them on the dashboard and an admin sees them on a user's page:
// one rendering, so both read an entry the same way. Below 600 px each entry is a stacked block.
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
    <DataTable id={id} columns={LEDGER_COLUMNS} stack>
      {items.map((item) => (
        <tr key={item.id} data-kind={item.kind}>
          <td data-label={LEDGER_COLUMNS[0].label}>{formatDateTime(item.createdAt)}</td>
          <td data-label={LEDGER_COLUMNS[1].label}>
            {item.description}
            {item.description !== kindLabel(item.kind) && (
              <small>{` · ${kindLabel(item.kind)}`}</small>
            )}
          </td>
          <td class="number" data-label={LEDGER_COLUMNS[2].label}>{formatSigned(item.amount)}</td>
          <td class="number" data-label={LEDGER_COLUMNS[3].label}>{item.balanceAfter}</td>
        </tr>
      ))}
    </DataTable>
  );
}
