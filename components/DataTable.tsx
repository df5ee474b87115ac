// The one table markup of every listing page: Pico's striped table in a scroll box, so a wide
// table scrolls on its own at phone width instead of widening the page.
import type { ComponentChildren } from "preact";

export type Column = { label: string; numeric?: boolean };

export function DataTable(
  { id, columns, children }: { id: string; columns: Column[]; children: ComponentChildren },
) {
  return (
    <div class="overflow-auto">
      <table class="striped" id={id}>
        <thead>
          <tr>
            {columns.map((column) => (
              <th key={column.label} scope="col" class={column.numeric ? "number" : undefined}>
                {column.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
