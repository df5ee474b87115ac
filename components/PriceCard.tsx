// A card of the pricing table, for a plan or a credit package: the same frame on the server-rendered
// cards and in the subscription toggle island, and the same link into Tally's checkout.
import type { ComponentChildren } from "preact";

export function checkoutHref(priceId: string): string {
  return `/checkout/start?priceId=${encodeURIComponent(priceId)}&auto=1`;
}

export function PriceCard(
  { sells, id, name, children, actions }: {
    sells: "plan" | "package";
    id: string;
    name: string;
    children: ComponentChildren;
    actions: ComponentChildren;
  },
) {
  return (
    <article
      class={sells}
      data-plan={sells === "plan" ? id : undefined}
      data-package={sells === "package" ? id : undefined}
    >
      <header>
        <h3>{name}</h3>
      </header>
      {children}
      <footer>{actions}</footer>
    </article>
  );
}
