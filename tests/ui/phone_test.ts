// Every page at phone width (390 px), signed out, signed in and as an admin: nothing is wider
// than the screen, the navigation collapses into a menu that opens, "Log out" is on screen, and
// the history reads as stacked rows with every value visible.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { browserTest, signUpInBrowser, startBrowserSession } from "../helpers/browser.ts";
import { verifyEmail } from "../helpers/db.ts";

const PHONE = 390;
const ADMIN = "phone-admin@test.local";

/** Opens the page and checks that the document does not scroll sideways. */
async function assertFits(page: Page, path: string): Promise<void> {
  await page.goto(path);
  await page.waitForLoadState("load");
  const size = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(size.scroll <= size.client, `${path}: ${size.scroll}px wide in ${size.client}px`);
}

/** True when the element is shown and lies entirely inside the viewport's width. */
async function onScreen(page: Page, selector: string): Promise<string> {
  return await page.locator(selector).first().evaluate((element, width) => {
    const box = element.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return "not shown";
    if (box.left < 0 || box.right > width) return `from ${box.left}px to ${box.right}px`;
    return "ok";
  }, PHONE);
}

/** The collapsed menu opens and shows every page link it holds. */
async function assertMenu(page: Page, links: string[]): Promise<void> {
  const nav = page.getByRole("navigation", { name: "Main" });
  for (const name of links) {
    assert.equal(await nav.getByRole("link", { name, exact: true }).count(), 0, `${name} shown`);
  }
  await nav.getByRole("button", { name: "Menu" }).click();
  for (const name of links) {
    const link = nav.getByRole("link", { name, exact: true });
    await link.waitFor();
    const box = await link.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE, `${name}: ${JSON.stringify(box)}`);
  }
  await page.keyboard.press("Escape");
}

async function assertLogOutOnScreen(page: Page): Promise<void> {
  assert.equal(await onScreen(page, 'nav button:text-is("Log out")'), "ok", page.url());
}

Deno.test({
  name: "ui: every page fits a 390 px screen, signed out, signed in and as an admin",
  ...browserTest,
  fn: async () => {
    const session = await startBrowserSession({ ADMIN_EMAILS: ADMIN });
    try {
      const visitor = await session.newPage({ width: PHONE });
      for (const path of ["/", "/signup", "/login", "/no-such-page"]) {
        await assertFits(visitor, path);
      }

      const user = await session.newPage({ width: PHONE });
      await signUpInBrowser(user);
      // Some history, so that the table has rows of every shape.
      const spent = await user.request.post("/api/me/credits/consume", {
        data: { amount: 7, idempotencyKey: crypto.randomUUID(), description: "Rendered a video" },
        headers: { origin: session.server.baseUrl },
      });
      assert.equal(spent.status(), 200);
      const userPages = [
        "/",
        "/dashboard",
        "/billing",
        "/checkout/start?priceId=price_pkg_standard",
        "/checkout/success?session_id=cs_phone&wait=500",
        "/no-such-page",
      ];
      for (const path of userPages) {
        await assertFits(user, path);
        await assertLogOutOnScreen(user);
      }
      await user.goto("/dashboard");
      await assertMenu(user, ["Pricing", "Dashboard", "Billing"]);
      // The history as stacked rows: the date on one line, and the balance on screen.
      for (const cell of [1, 2, 3, 4]) {
        assert.equal(
          await onScreen(user, `#transactions tbody tr:first-child td:nth-child(${cell})`),
          "ok",
          `history cell ${cell}`,
        );
      }
      const when = await user.locator("#transactions tbody tr:first-child td:first-child")
        .evaluate((element) => {
          const lineHeight = parseFloat(getComputedStyle(element).lineHeight) || 24;
          return Math.round(element.getBoundingClientRect().height / lineHeight);
        });
      assert.ok(when <= 2, `the date takes ${when} lines`);

      const admin = await session.newPage({ width: PHONE });
      await signUpInBrowser(admin, ADMIN);
      await verifyEmail(session.server.db.sql, ADMIN);
      const me = await (await user.request.get("/api/me")).json() as { id: string };
      const adminPages = [
        "/",
        "/dashboard",
        "/billing",
        "/admin",
        `/admin/users/${me.id}`,
        "/admin/api-keys",
        "/nope",
      ];
      for (const path of adminPages) {
        await assertFits(admin, path);
        await assertLogOutOnScreen(admin);
      }
      await admin.goto("/admin");
      await assertMenu(admin, ["Pricing", "Dashboard", "Billing", "Admin"]);
    } finally {
      await session.close();
    }
  },
});
