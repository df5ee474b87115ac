// The frame of every page: head, navigation (with the balance when signed in), main, footer, and
// last the islands' props and script (components/Island.tsx).
import type { ComponentChildren } from "preact";
import { Island, IslandScripts } from "./Island.tsx";

/** Who is looking at the page: null when signed out. */
export type Viewer = { email: string; balance: number | null; admin: boolean } | null;

type LayoutProps = {
  title: string;
  viewer: Viewer;
  path: string;
  assetVersion: string;
  children: ComponentChildren;
};

function NavLink({ href, path, children }: { href: string; path: string; children: string }) {
  const current = path === href || (href !== "/" && path.startsWith(`${href}/`));
  return (
    <li>
      <a href={href} aria-current={current ? "page" : undefined}>{children}</a>
    </li>
  );
}

export function Layout({ title, viewer, path, assetVersion, children }: LayoutProps) {
  const asset = (name: string) => `/static/${name}?v=${assetVersion}`;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <title>{`${title} · Tally`}</title>
        <link rel="stylesheet" href={asset("pico.min.css")} />
        <link rel="stylesheet" href={asset("app.css")} />
      </head>
      <body>
        <a class="skip-link" href="#main">Skip to content</a>
        <header class="container">
          <nav aria-label="Main">
            <ul>
              <li>
                <a href="/" class="brand">
                  <strong>Tally</strong>
                </a>
              </li>
            </ul>
            {
              /* Below 600 px the pages and the balance fold into this popover, opened by "Menu"
                (no script: the browser does it); wider, the same list shows inline. */
            }
            <ul id="nav-menu" class="nav-menu" popover="auto">
              <NavLink href="/" path={path}>Pricing</NavLink>
              {viewer
                ? (
                  <>
                    <NavLink href="/dashboard" path={path}>Dashboard</NavLink>
                    <NavLink href="/billing" path={path}>Billing</NavLink>
                    {viewer.admin && <NavLink href="/admin" path={path}>Admin</NavLink>}
                    {viewer.balance !== null && (
                      <li>
                        <Island name="NavBalance" props={{ balance: viewer.balance }} />
                      </li>
                    )}
                  </>
                )
                : <NavLink href="/login" path={path}>Log in</NavLink>}
            </ul>
            <ul>
              <li class="nav-toggle">
                <button type="button" popovertarget="nav-menu" class="secondary outline">
                  Menu
                </button>
              </li>
              {viewer
                ? (
                  <li>
                    <form method="post" action="/logout" class="inline">
                      <button type="submit" class="secondary outline">Log out</button>
                    </form>
                  </li>
                )
                : (
                  <li>
                    <a href="/signup" role="button">Sign up</a>
                  </li>
                )}
            </ul>
          </nav>
        </header>
        <main class="container" id="main" tabIndex={-1}>
          {children}
        </main>
        <footer class="container">
          <small>Tally: credits and subscriptions. All times are UTC.</small>
        </footer>
        <IslandScripts asset={asset} />
      </body>
    </html>
  );
}
