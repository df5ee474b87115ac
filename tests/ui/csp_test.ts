// The Content-Security-Policy in a real browser: every page works under it (islands hydrate, the
// chart draws) with no violation reported, inline script is refused, and no other origin can
// frame a page.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import {
  browserTest,
  islandsHydrated,
  signUpInBrowser,
  startBrowserSession,
} from "../helpers/browser.ts";
import { verifyEmail } from "../helpers/db.ts";

const ADMIN = "csp-admin@test.local";

/** Records CSP violations and script errors of a page from its first byte on. */
async function watched(page: Page): Promise<{ problems: () => Promise<string[]> }> {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    // The browser's own favicon.ico request (Tally has none) is no fault of a page.
    if (message.location().url.endsWith("/favicon.ico")) return;
    if (message.type() === "error") {
      errors.push(`console: ${message.text()} ${message.location().url}`);
    }
  });
  await page.addInitScript(() => {
    const seen: string[] = [];
    (globalThis as unknown as { cspViolations: string[] }).cspViolations = seen;
    document.addEventListener("securitypolicyviolation", (event) => {
      seen.push(`${location.pathname}: ${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  return {
    problems: async () => [
      ...errors,
      ...await page.evaluate(() =>
        (globalThis as unknown as { cspViolations: string[] }).cspViolations
      ),
    ],
  };
}

/** Opens a page and checks that it answered with the policy and that nothing was refused. */
async function visit(page: Page, path: string, watch: { problems: () => Promise<string[]> }) {
  const response = await page.goto(path);
  assert.ok(response, path);
  const csp = response.headers()["content-security-policy"] ?? "";
  assert.match(csp, /script-src 'self'/, `${path}: ${csp}`);
  assert.match(csp, /frame-ancestors 'none'/, `${path}: ${csp}`);
  await page.waitForLoadState("load");
  assert.deepEqual(await watch.problems(), [], path);
}

Deno.test({
  name: "ui: every page works under the CSP, inline script is refused, framing is refused",
  ...browserTest,
  fn: async () => {
    const session = await startBrowserSession({ ADMIN_EMAILS: ADMIN });
    try {
      const page = await session.newPage();
      const watch = await watched(page);

      await visit(page, "/", watch);
      await islandsHydrated(page);
      // PricingToggle hydrated: the toggle rewrites the prices in place.
      await page.getByLabel("Yearly").check();
      assert.match(await page.locator('[data-plan="pro"] .price').innerText(), /\/year/);
      await visit(page, "/signup", watch);
      await visit(page, "/login", watch);

      await signUpInBrowser(page, ADMIN);
      // An ADMIN_EMAILS address gets the admin pages once verified.
      await verifyEmail(session.server.db.sql, ADMIN);
      await visit(page, "/dashboard", watch);
      await islandsHydrated(page);
      // The props of all the page's islands are one JSON data block, which script-src does not
      // refuse (no violation above), rather than an attribute on each island's mark.
      assert.deepEqual(
        await page.evaluate(() => ({
          blocks: document.querySelectorAll('script[type="application/json"]').length,
          marks: document.querySelectorAll("[data-island-id]").length,
          attributes: document.querySelectorAll("[data-props]").length,
        })),
        { blocks: 1, marks: 6, attributes: 0 },
      );
      // The chart is drawn by uPlot (a canvas only the island makes) and the daily sign-in
      // island claims through fetch, without leaving the page.
      await page.locator(".chart canvas").waitFor();
      await page.getByRole("button", { name: /Claim 5 credits/ }).click();
      await page.getByText("You got 5 credits").waitFor();
      assert.equal(new URL(page.url()).search, "", "the claim went through the island");
      await visit(page, "/billing", watch);
      await visit(page, "/checkout/start?priceId=price_pkg_standard", watch);
      await visit(page, "/checkout/success?session_id=cs_csp&wait=1500", watch);
      // CheckoutWait hydrated: it polled and gave up waiting.
      await page.getByText("Your payment is still being processed").waitFor({ timeout: 15_000 });
      await visit(page, "/admin", watch);
      const me = await (await page.request.get("/api/me")).json() as { id: string };
      await visit(page, `/admin/users/${me.id}`, watch);
      await page.goto("/no-such-page");
      // The 404 of the document itself is the one error expected here.
      assert.deepEqual(
        (await watch.problems()).filter((p) => !/404.*\/no-such-page$/.test(p)),
        [],
        "/no-such-page",
      );

      // The policy is enforced: a script injected inline does not run, and says so.
      const ran = await page.evaluate(async () => {
        const script = document.createElement("script");
        script.textContent = "document.body.dataset.injected = 'ran'";
        document.head.append(script);
        await new Promise((resolve) => setTimeout(resolve, 200));
        return document.body.dataset.injected ?? null;
      });
      assert.equal(ran, null, "an inline script ran");
      assert.ok(
        (await watch.problems()).some((p) => /script-src/.test(p)),
        "the refused inline script was reported",
      );

      // Another origin framing /admin (with the admin's cookie, were it same-site) gets nothing.
      const framer = await session.newPage();
      await framer.route("http://sibling.test/", (route) =>
        route.fulfill({
          contentType: "text/html",
          body: `<iframe id="f" src="${session.server.baseUrl}/admin"></iframe>`,
        }));
      await framer.goto("http://sibling.test/", { waitUntil: "load" });
      await framer.waitForTimeout(300);
      const child = framer.frames().find((frame) => frame !== framer.mainFrame());
      assert.ok(child, "the iframe exists");
      assert.ok(
        !child.url().startsWith(session.server.baseUrl),
        `the framed page loaded: ${child.url()}`,
      );
    } finally {
      await session.close();
    }
  },
});
