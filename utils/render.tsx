// Server-side rendering: a page is a Preact tree rendered to a string inside the layout. Islands
// (components/Island.tsx) are collected while the page renders; the layout ends <body> with their
// props in one JSON block and the browser entry that hydrates them (islands/client.ts).
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ComponentChildren } from "preact";
import { renderToString } from "preact-render-to-string";
import { IslandCollector, IslandsOfPage } from "../components/Island.tsx";
import { Layout, type Viewer } from "../components/Layout.tsx";
import type { AppEnv } from "./app_env.ts";
import { staticVersion } from "./static_files.ts";

export { Island } from "../components/Island.tsx";

export type PageOptions = {
  title: string;
  viewer: Viewer;
  status?: ContentfulStatusCode;
  children: ComponentChildren;
};

export function renderDocument(options: PageOptions & { path: string }): string {
  return "<!doctype html>" + renderToString(
    <IslandsOfPage value={new IslandCollector()}>
      <Layout
        title={options.title}
        viewer={options.viewer}
        path={options.path}
        assetVersion={staticVersion()}
      >
        {options.children}
      </Layout>
    </IslandsOfPage>,
  );
}

/** Renders a full HTML page as the response. */
export function page(c: Context<AppEnv>, options: PageOptions): Response {
  return c.html(renderDocument({ ...options, path: c.req.path }), options.status ?? 200, {
    "Cache-Control": "no-store",
  });
}
