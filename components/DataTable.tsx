// The one table markup of every listing page: Pico's striped table in a scroll box, so a wide
// table scrolls on its own at phone width instead of widening the page. A "stack" table reads as
// one block per row below 600 px instead (static/app.css); its cells then carry data-label.
import type { ComponentChildren } from "preact";

export type Column = { label: string; numeric?: boolean };

export function DataTable(
  { id, columns, stack, children }: {
    id: string;
    columns: Column[];
    stack?: boolean;
    children: ComponentChildren;
  },
) {
  return (
    <div class="overflow-auto">
      <table class={stack ? "striped stack" : "striped"} id={id}>
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
