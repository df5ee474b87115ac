// The user's grants in the order they will be spent, re-rendered when an island on the page
// changes the credits (islands/_credits.ts).
import { DataTable } from "../components/DataTable.tsx";
import { formatDate, kindLabel } from "../components/format.ts";
import type { Grant } from "../components/types.ts";
import { summary } from "./_credits.ts";

export type GrantsProps = { grants: Grant[] };

export function Grants(props: GrantsProps) {
  const grants = summary.value?.grants ?? props.grants;
  if (grants.length === 0) return <p>You have no credits left.</p>;
  return (
    <DataTable
      id="grants"
      columns={[
        { label: "Kind" },
        { label: "Remaining", numeric: true },
        { label: "Of", numeric: true },
        { label: "Expires" },
      ]}
    >
      {grants.map((grant) => (
        <tr key={grant.id} data-kind={grant.kind}>
          <td>{kindLabel(grant.kind)}</td>
          <td class="number">{grant.remaining}</td>
          <td class="number">{grant.amount}</td>
          <td>{grant.expiresAt ? formatDate(grant.expiresAt) : "never"}</td>
        </tr>
      ))}
    </DataTable>
  );
}
