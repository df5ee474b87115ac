// Screenshots of the pricing, dashboard, billing and admin pages for the README. `deno task
// screenshots` (TALLY_SCREENSHOTS=1) writes them to docs/screenshots/; a plain test run takes
// them into a temporary directory, so the suite keeps them working.
import assert from "node:assert/strict";
import {
  postStripe,
  stripeCheckoutSession,
  stripeEvent,
  uniqueId,
  WEBHOOK_ENV,
} from "../helpers/fixtures_webhooks.ts";
import { browserTest, signUpInBrowser, startBrowserSession } from "../helpers/browser.ts";
import { verifyEmail } from "../helpers/db.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const ADMIN = "admin@example.com";

Deno.test({
  name: "ui: screenshots of the pricing, dashboard, billing and admin pages",
  ...browserTest,
  fn: async () => {
    const publish = Deno.env.get("TALLY_SCREENSHOTS") === "1";
    const dir = publish
      ? `${ROOT}docs/screenshots`
      : await Deno.makeTempDir({ prefix: "tally-screenshots-" });
    await Deno.mkdir(dir, { recursive: true });
    const session = await startBrowserSession({ ...WEBHOOK_ENV, ADMIN_EMAILS: ADMIN });
    try {
      const base = session.server.baseUrl;
      const page = await session.newPage({ width: 1100 });
      await page.goto("/");
      await page.screenshot({ path: `${dir}/pricing.png`, fullPage: true });

      const email = "ada@example.com";
      await signUpInBrowser(page, email);
      const me = await (await page.request.get("/api/me")).json() as { id: string };
      // Some history: a package bought, a daily sign-in, a few days of usage.
      const bought = stripeEvent(
        "checkout.session.completed",
        stripeCheckoutSession({ userId: me.id, priceId: "price_pkg_standard" }),
      );
      assert.equal((await postStripe(base, bought)).json?.result, "processed");
      await page.request.post("/api/me/daily-signin", { headers: { origin: base } });
      const sql = session.server.db.sql;
      await sql`
        select credits.consume(${me.id}, 3 + (i * 7) % 11, 'shot:' || i, 'Image generation',
                               now() - make_interval(hours => i * 19))
          from generate_series(24, 0, -1) i`;
      await page.goto("/dashboard");
      await page.locator(".chart canvas").waitFor();
      await page.screenshot({ path: `${dir}/dashboard.png`, fullPage: true });

      await page.goto("/billing");
      await page.screenshot({ path: `${dir}/billing.png`, fullPage: true });

      // The admin page with a failed event waiting for a replay.
      const orphan = stripeEvent(
        "checkout.session.completed",
        stripeCheckoutSession({
          email: "nobody-yet@example.com",
          priceId: "price_pkg_standard",
          customer: uniqueId("cus"),
        }),
      );
      assert.equal((await postStripe(base, orphan)).json?.result, "failed");
      const admin = await session.newPage({ width: 1100 });
      await signUpInBrowser(admin, ADMIN);
      await verifyEmail(sql, ADMIN); // an admin's address counts once verified
      await admin.goto("/admin");
      await admin.getByRole("button", { name: "Run the daily job now" }).click();
      await admin.locator("#flash").waitFor();
      await admin.screenshot({ path: `${dir}/admin.png`, fullPage: true });

      for (const name of ["pricing", "dashboard", "billing", "admin"]) {
        const { size } = await Deno.stat(`${dir}/${name}.png`);
        assert.ok(size > 10_000, `${name}.png is ${size} bytes`);
      }
    } finally {
      await session.close();
      if (!publish) await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
