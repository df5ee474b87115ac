// The balance in the navigation of every signed-in page: the server's figure until an island on
// the page learns a newer one (islands/_credits.ts).
import { formatCredits } from "../components/format.ts";
import { balance } from "./_credits.ts";

export type NavBalanceProps = { balance: number };

export function NavBalance(props: NavBalanceProps) {
  return (
    <a href="/dashboard" id="nav-balance" title="Your balance">
      {formatCredits(balance.value ?? props.balance)}
    </a>
  );
}
