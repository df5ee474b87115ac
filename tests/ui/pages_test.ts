// Browser tests of the public and signed-in pages: real chromium, real server, real PostgreSQL.
import assert from "node:assert/strict";
import type { Page, Request } from "playwright-core";
import { ensureUiBuilt } from "../../utils/static_files.ts";
import { islandBundleSizes } from "../../tasks/build_ui.ts";
import {
  browserTest,
  islandsHydrated,
  signUpInBrowser,
  startBrowserSession,
} from "../helpers/browser.ts";
import { signedUp, withServer } from "../helpers/http.ts";

/** Checks the accessibility basics the UI promises on the page that is open. */
async function assertAccessible(page: Page): Promise<void> {
  const problems = await page.evaluate(() => {
    const found: string[] = [];
    if (!document.title.trim()) found.push("the page has no title");
    for (const input of document.querySelectorAll("input, select, textarea")) {
      const field = input as HTMLInputElement;
      if (field.type === "hidden") continue;
      const labelled = (field.labels?.length ?? 0) > 0 || field.getAttribute("aria-label") ||
        field.getAttribute("aria-labelledby");
      if (!labelled) found.push(`unlabelled ${field.tagName} ${field.name}`);
    }
    for (const img of document.querySelectorAll("img")) {
      if (!img.hasAttribute("alt")) found.push(`img without alt: ${img.src}`);
    }
    let previous = 0;
    for (const heading of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
      const level = Number(heading.tagName.slice(1));
      if (previous === 0 && level !== 1) found.push(`first heading is ${heading.tagName}`);
      if (level > previous + 1 && previous !== 0) {
        found.push(`heading ${heading.tagName} "${heading.textContent}" skips a level`);
      }
      previous = level;
    }
    if (document.querySelectorAll("h1").length !== 1) found.push("not exactly one h1");
    return found;
  });
  assert.deepEqual(problems, [], `${page.url()}: ${problems.join("; ")}`);
  // Focus is visible: the first Tab stops on the skip link, the next ones on real controls, and
  // each shows an outline.
  await page.locator("body").focus();
  for (let i = 0; i < 3; i++) {
    await page.keyboard.press("Tab");
    const outline = await page.evaluate(() => {
      const element = document.activeElement as HTMLElement | null;
      if (!element || element === document.body) return "nothing focused";
      const style = getComputedStyle(element);
      return style.outlineStyle !== "none" && style.outlineWidth !== "0px"
        ? "ok"
        : style.boxShadow !== "none"
        ? "ok"
        : `no visible focus on ${element.tagName} ${element.textContent?.trim()}`;
    });
    assert.equal(outline, "ok", page.url());
  }
}

function balanceOf(text: string | null): number {
  return Number((text ?? "").replace(/[^0-9]/g, ""));
}

Deno.test({
  name: "ui: sign up, pricing toggle, daily sign-in, usage, 404s, accessibility",
  ...browserTest,
  fn: async () => {
    const session = await startBrowserSession();
    try {
      const page = await session.newPage();

      await page.goto("/");
      await islandsHydrated(page);
      assert.match(await page.title(), /Tally/);
      const pro = page.locator('[data-plan="pro"] .price');
      assert.match(await pro.innerText(), /\$9\.90\s*\/month/);
      await page.getByLabel("Yearly").check();
      assert.match(await pro.innerText(), /\$99\.00\s*\/year/);
      await page.getByLabel("Monthly").check();
      assert.match(await pro.innerText(), /\$9\.90\s*\/month/);
      await assertAccessible(page);

      // Sign-up grants the gift (50) and the free plan's month (50).
      await signUpInBrowser(page);
      assert.equal(balanceOf(await page.locator("#balance").innerText()), 100);
      assert.equal(balanceOf(await page.locator("#nav-balance").innerText()), 100);
      await assertAccessible(page);

      // Daily sign-in once, then "come back tomorrow".
      await page.getByRole("button", { name: /Claim 5 credits/ }).click();
      await page.getByText("You got 5 credits").waitFor();
      assert.equal(balanceOf(await page.locator("#nav-balance").innerText()), 105);
      await page.reload();
      await page.getByText(/come back tomorrow/i).waitFor();
      assert.equal(await page.getByRole("button", { name: /Claim/ }).count(), 0);

      // Spending through the API shows in the history and the chart.
      const before = await page.locator("#usage-table tbody tr").count();
      const spent = await page.request.post("/api/me/credits/consume", {
        data: { amount: 7, idempotencyKey: crypto.randomUUID(), description: "Rendered a video" },
        headers: { origin: session.server.baseUrl },
      });
      assert.equal(spent.status(), 200);
      await page.reload();
      await islandsHydrated(page);
      const usageRow = page.locator("#transactions tbody tr").first();
      assert.match(await usageRow.innerText(), /Rendered a video[\s\S]*-7[\s\S]*98/);
      const today = new Date().toISOString().slice(0, 10);
      assert.equal(before, 0);
      assert.equal(
        await page.locator(`#usage-table tr[data-day="${today}"] td.number`).textContent(),
        "7",
      );
      await page.locator(".chart canvas").waitFor();
      // The filter island pages through /api/me/transactions.
      await page.getByLabel("Kind").selectOption("daily_signin");
      await page.locator('#transactions tbody tr[data-kind="usage"]').waitFor({
        state: "detached",
      });
      assert.equal(await page.locator("#transactions tbody tr").count(), 1);

      // A non-admin gets the HTML 404 on /admin; the API keeps its JSON 404.
      const admin = await page.goto("/admin");
      assert.equal(admin?.status(), 404);
      assert.match(await page.title(), /Page not found/);
      assert.equal(balanceOf(await page.locator("#nav-balance").innerText()), 98);
      const api = await page.request.get("/api/nope");
      assert.equal(api.status(), 404);
      assert.deepEqual(await api.json(), { error: "not_found", message: "no such route" });
      await assertAccessible(page);
    } finally {
      await session.close();
    }
  },
});

Deno.test({
  name: "ui: sign-up and login forms work without JavaScript",
  ...browserTest,
  fn: async () => {
    const session = await startBrowserSession();
    try {
      const page = await session.newPage({ javaScript: false, width: 390 });
      const email = `${crypto.randomUUID()}@test.local`;

      await page.goto("/signup");
      await page.getByLabel("Email").fill(email);
      await page.getByLabel("Password").fill("short");
      await page.locator("main").getByRole("button", { name: "Sign up" }).click();
      assert.match(await page.locator("#field-password-error").innerText(), /at least 8/i);
      assert.equal(await page.getByLabel("Email").inputValue(), email);
      assert.equal(await page.getByLabel("Password").inputValue(), "");
      assert.equal(
        await page.getByLabel("Password").getAttribute("aria-describedby"),
        "field-password-error",
      );
      await assertAccessible(page);

      await page.getByLabel("Password").fill("correct horse 1");
      await page.locator("main").getByRole("button", { name: "Sign up" }).click();
      await page.waitForURL("**/dashboard");
      assert.equal(balanceOf(await page.locator("#balance").innerText()), 100);

      // The daily sign-in button is a plain form too.
      await page.getByRole("button", { name: /Claim 5 credits/ }).click();
      await page.getByText("You got 5 credits").waitFor();
      assert.equal(balanceOf(await page.locator("#balance").innerText()), 105);

      await page.getByRole("button", { name: "Log out" }).click();
      await page.waitForURL(/\/$/);
      assert.equal(await page.locator("#nav-balance").count(), 0);

      // The same email again: the error sits next to the email field.
      await page.goto("/signup");
      await page.getByLabel("Email").fill(email);
      await page.getByLabel("Password").fill("correct horse 1");
      await page.locator("main").getByRole("button", { name: "Sign up" }).click();
      assert.match(await page.locator("#field-email-error").innerText(), /already exists/);

      await page.goto("/login");
      await page.getByLabel("Email").fill(email);
      await page.getByLabel("Password").fill("wrong password");
      await page.locator("main").getByRole("button", { name: "Log in" }).click();
      assert.match(await page.locator("#field-password-error").innerText(), /Wrong email/);
      assert.equal(await page.getByLabel("Email").inputValue(), email);
      await page.getByLabel("Password").fill("correct horse 1");
      await page.locator("main").getByRole("button", { name: "Log in" }).click();
      await page.waitForURL("**/dashboard");

      // A "buy" click while signed out goes through sign-up and then on to the checkout.
      const buyer = await session.newPage({ javaScript: false });
      await buyer.goto("/");
      await buyer.locator('[data-package="standard"] a[role="button"]').click();
      await buyer.waitForURL(/\/signup\?next=/);
      await buyer.getByLabel("Email").fill(`${crypto.randomUUID()}@test.local`);
      await buyer.getByLabel("Password").fill("correct horse 1");
      await buyer.locator("main").getByRole("button", { name: "Sign up" }).click();
      await buyer.waitForURL(/\/checkout\/start\?priceId=price_pkg_standard/);
      assert.match(await buyer.locator("h1").innerText(), /Continue to payment/);
    } finally {
      await session.close();
    }
  },
});

Deno.test("ui: the island bundle stays under 60 KB gzipped", async () => {
  await ensureUiBuilt();
  // Every island bundle together (the entry, each island and their shared chunks): more than any
  // one page loads.
  const sizes = await islandBundleSizes();
  assert.ok(sizes.some((file) => file.name === "client.js"), "no entry");
  const gzipped = { byteLength: sizes.reduce((sum, file) => sum + file.gzipped, 0) };
  assert.ok(gzipped.byteLength < 60 * 1024, `${gzipped.byteLength} bytes gzipped`);
});

Deno.test({
  name: "ui: after Claim every balance on the dashboard shows the new value, focus on the result",
  ...browserTest,
  fn: async () => {
    const session = await startBrowserSession();
    try {
      const page = await session.newPage();
      // Island code that arrives late (a slow network, a loaded machine): a click before the
      // island has hydrated would post the plain form and reload the page, focus and all.
      await page.route("**/static/islands/**", async (route) => {
        await new Promise((resolve) => setTimeout(resolve, 400));
        await route.continue();
      });
      await signUpInBrowser(page);
      assert.equal(balanceOf(await page.locator("#balance").innerText()), 100);
      const grantsBefore = await page.locator("#grants tbody tr").count();

      await page.getByRole("button", { name: /Claim 5 credits/ }).click();
      await page.getByText("You got 5 credits").waitFor();
      // The nav, the Balance card, the grants and the history: one balance on the page.
      await page.waitForFunction(
        () => {
          const digits = (selector: string) =>
            Number((document.querySelector(selector)?.textContent ?? "").replace(/[^0-9]/g, ""));
          return digits("#nav-balance") === 105 && digits("#balance") === 105 &&
            document.querySelector('#grants tbody tr[data-kind="daily_signin"]') !== null &&
            document.querySelector('#transactions tbody tr[data-kind="daily_signin"]') !== null;
        },
        undefined,
        { timeout: 10_000 },
      ).catch(() => {});
      assert.equal(balanceOf(await page.locator("#nav-balance").innerText()), 105);
      assert.equal(balanceOf(await page.locator("#balance").innerText()), 105);
      assert.equal(await page.locator("#grants tbody tr").count(), grantsBefore + 1);
      assert.match(
        await page.locator('#grants tbody tr[data-kind="daily_signin"]').innerText(),
        /5[\s\S]*5/,
      );
      const newest = page.locator("#transactions tbody tr").first();
      assert.equal(await newest.getAttribute("data-kind"), "daily_signin");
      assert.match(await newest.innerText(), /\+5[\s\S]*105/);
      // Focus moves to the result rather than falling to <body> with the removed button.
      const focused = await page.evaluate(() => ({
        id: document.activeElement?.id ?? "",
        text: document.activeElement?.textContent ?? "",
      }));
      assert.equal(focused.id, "daily-signin-result");
      assert.match(focused.text, /You got 5 credits/);
    } finally {
      await session.close();
    }
  },
});

/** The scripts and stylesheets a page loaded from /static/, by path, with their text. */
async function assetsOf(page: Page, path: string): Promise<Map<string, string>> {
  const loaded = new Set<string>();
  const listener = (request: Request) => {
    const url = new URL(request.url());
    if (url.pathname.startsWith("/static/")) loaded.add(url.pathname + url.search);
  };
  page.on("request", listener);
  await page.goto(path);
  await page.waitForLoadState("networkidle");
  page.off("request", listener);
  // Read again through the API: a browser may no longer hold the body of a response it used.
  return new Map(
    await Promise.all(
      [...loaded].map(async (url) => [url, await (await page.request.get(url)).text()] as const),
    ),
  );
}

Deno.test({
  name: "ui: a page loads only the islands it renders (uPlot only with the chart)",
  ...browserTest,
  fn: async () => {
    const session = await startBrowserSession();
    try {
      const page = await session.newPage();
      // uPlot's own class names are in its code and its stylesheet, whatever the minifier does.
      const hasUplot = (assets: Map<string, string>) =>
        [...assets.values()].some((text) => text.includes("u-over"));

      const pricing = await assetsOf(page, "/");
      assert.ok([...pricing.keys()].some((name) => name.endsWith(".js")), "no island on /");
      assert.equal(hasUplot(pricing), false, `uPlot on /: ${[...pricing.keys()]}`);
      assert.equal(hasUplot(await assetsOf(page, "/login")), false, "uPlot on /login");

      await signUpInBrowser(page);
      const dashboard = await assetsOf(page, "/dashboard");
      assert.ok(hasUplot(dashboard), `no uPlot on /dashboard: ${[...dashboard.keys()]}`);
      await page.locator(".chart canvas").waitFor();
      assert.equal(hasUplot(await assetsOf(page, "/billing")), false, "uPlot on /billing");
    } finally {
      await session.close();
    }
  },
});

Deno.test("ui: island props are one JSON block that no text can close, the bundles are served", async () => {
  await withServer(async (server) => {
    const { client } = await signedUp(server);
    const hostile = "</script><script>document.title='x'</script><!--";
    const spent = await client.request("POST", "/api/me/credits/consume", {
      amount: 1,
      idempotencyKey: crypto.randomUUID(),
      description: hostile,
    });
    assert.equal(spent.status, 200);
    const page = await client.request("GET", "/dashboard");
    assert.equal(page.status, 200);
    const html = String(page.json);
    assert.equal(html.includes(hostile), false, "the description reached the HTML unescaped");
    const blocks = [...html.matchAll(
      /<script type="application\/json" id="island-props">([\s\S]*?)<\/script>/g,
    )];
    assert.equal(blocks.length, 1);
    const marks = JSON.parse(blocks[0][1]) as { name: string; props: unknown }[];
    assert.deepEqual(
      marks.map((mark) => mark.name),
      ["NavBalance", "CreditStats", "DailySignin", "UsageChart", "Grants", "Transactions"],
    );
    const history = marks[5].props as { initial: { items: { description: string }[] } };
    assert.equal(history.initial.items[0].description, hostile);
    assert.equal(html.includes("data-props"), false);

    // A page without islands names no script at all.
    const login = await fetch(`${server.baseUrl}/login`);
    assert.equal((await login.text()).includes("<script"), false);

    const entry = await fetch(`${server.baseUrl}/static/islands/client.js`);
    assert.equal(entry.status, 200);
    assert.match(entry.headers.get("content-type") ?? "", /^text\/javascript/);
    assert.match(await entry.text(), /island-props/);
    for (const name of ["nope.js", "..%2Fapp.css", "client.ts", "%2E%2E%2Fpico.min.css"]) {
      const refused = await fetch(`${server.baseUrl}/static/islands/${name}`);
      await refused.body?.cancel();
      assert.equal(refused.status, 404, name);
    }
  });
});
