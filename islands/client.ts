// The browser entry (bundled into static/islands.js by `deno task build`): hydrates every
// <div data-island="Name" data-props='{json}'> that the server rendered.
import { type ComponentType, h, hydrate } from "preact";
import { type IslandName, islands } from "./registry.ts";

function hydrateAll(): void {
  for (const element of document.querySelectorAll<HTMLElement>("[data-island]")) {
    const name = element.dataset.island as IslandName;
    const component = islands[name];
    if (!component) {
      console.error(`unknown island ${name}`);
      continue;
    }
    // The props were type-checked where the server rendered the mark (utils/render.tsx).
    const props = JSON.parse(element.dataset.props ?? "{}") as Record<string, unknown>;
    hydrate(h(component as ComponentType<Record<string, unknown>>, props), element);
  }
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", hydrateAll);
} else {
  hydrateAll();
}
