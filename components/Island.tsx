// Where an island goes on a page: the server renders the component inside
// <div data-island="Name" data-island-id="N">, and the props of every island of the page go in
// one <script type="application/json" id="island-props"> at the end of <body> (IslandScripts),
// next to the browser entry that hydrates them (islands/client.ts). A JSON block is data, not
// script: the CSP's script-src 'self' has nothing to refuse.
import { type ComponentChildren, createContext } from "preact";
import { useContext } from "preact/hooks";
import { ISLAND_STYLES, type IslandName, type IslandProps, islands } from "../islands/registry.ts";

type Mark = { name: IslandName; props: unknown };

/** The islands of one page, in the order they were rendered. */
export class IslandCollector {
  readonly marks: Mark[] = [];
}

const Collector = createContext<IslandCollector | null>(null);

/** Wraps a page being rendered, so that its islands can be collected (utils/render.tsx). */
export const IslandsOfPage = Collector.Provider;

export function Island<N extends IslandName>({ name, props }: { name: N; props: IslandProps<N> }) {
  const collector = useContext(Collector);
  if (!collector) throw new Error(`the island ${name} was rendered outside a page`);
  const id = collector.marks.push({ name, props }) - 1;
  const Component = islands[name] as (props: IslandProps<N>) => ComponentChildren;
  return (
    <div data-island={name} data-island-id={String(id)}>
      <Component {...props} />
    </div>
  );
}

/** JSON that stays data inside <script>: no "</script>" or "<!--" can end or change the block. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

/**
 * Last in <body>, after every island has been rendered: the stylesheets the page's islands need,
 * their props in one JSON block and the browser entry. Nothing at all on a page without islands.
 */
export function IslandScripts({ asset }: { asset: (name: string) => string }) {
  const marks = useContext(Collector)?.marks ?? [];
  if (marks.length === 0) return null;
  const styles = [...new Set(marks.flatMap((mark) => ISLAND_STYLES[mark.name] ?? []))];
  return (
    <>
      {styles.map((name) => <link key={name} rel="stylesheet" href={asset(name)} />)}
      <script
        type="application/json"
        id="island-props"
        dangerouslySetInnerHTML={{ __html: scriptJson(marks) }}
      />
      <script type="module" src={asset("islands/client.js")} />
    </>
  );
}
