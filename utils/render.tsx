// Server-side rendering: a page is a Preact tree rendered to a string inside the layout. Islands
// are marked <div data-island="Name" data-props='{json}'> around their server-rendered HTML, and
// islands/client.ts hydrates them in the browser.
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ComponentChildren } from "preact";
import { renderToString } from "preact-render-to-string";
import { Layout, type Viewer } from "../components/Layout.tsx";
import { type IslandName, type IslandProps, islands } from "../islands/registry.ts";
import type { AppEnv } from "./app_env.ts";
import { staticVersion } from "./static_files.ts";

export function Island<N extends IslandName>({ name, props }: { name: N; props: IslandProps<N> }) {
  const Component = islands[name] as (props: IslandProps<N>) => ComponentChildren;
  return (
    <div data-island={name} data-props={JSON.stringify(props)}>
      <Component {...props} />
    </div>
  );
}

export type PageOptions = {
  title: string;
  viewer: Viewer;
  status?: ContentfulStatusCode;
  children: ComponentChildren;
};

export function renderDocument(options: PageOptions & { path: string }): string {
  return "<!doctype html>" + renderToString(
    <Layout
      title={options.title}
      viewer={options.viewer}
      path={options.path}
      assetVersion={staticVersion()}
    >
      {options.children}
    </Layout>,
  );
}

/** Renders a full HTML page as the response. */
export function page(c: Context<AppEnv>, options: PageOptions): Response {
  return c.html(renderDocument({ ...options, path: c.req.path }), options.status ?? 200, {
    "Cache-Control": "no-store",
  });
}
