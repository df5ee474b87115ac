// Browser tests of the pages that depend on payments: the checkout success page waiting for a
// signed webhook, and the admin pages (replay of a failed event, credit adjustments, daily runs).
import assert from "node:assert/strict";
import {
  postStripe,
  stripeCheckoutSession,
  stripeEvent,
  uniqueId,
  WEBHOOK_ENV,
} from "../helpers/fixtures_webhooks.ts";
import { verifyEmail } from "../helpers/db.ts";
import { browserTest, signUpInBrowser, startBrowserSession } from "../helpers/browser.ts";

const ADMIN = "admin@test.local";

function balanceOf(text: string | null): number {
  return Number((text ?? "").replace(/[^0-9]/g, ""));
}

Deno.test({
  name: "ui: the success page shows the credits that a signed package webhook brings",
  ...browserTest,
  fn: async () => {
    const session = await startBrowserSession(WEBHOOK_ENV);
    try {
      const page = await session.newPage();
      await signUpInBrowser(page);
      const me = await (await page.request.get("/api/me")).json() as { id: string };

      await page.goto("/checkout/success?session_id=cs_test_ui");
      await page.getByText("Waiting for the payment to be confirmed").waitFor();

      const event = stripeEvent(
        "checkout.session.completed",
        stripeCheckoutSession({ userId: me.id, priceId: "price_pkg_standard" }),
      );
      const reply = await postStripe(session.server.baseUrl, event);
      assert.equal(reply.json?.result, "processed");

      await page.getByText("Your credits have arrived").waitFor({ timeout: 15_000 });
      assert.equal(balanceOf(await page.locator("#new-balance").innerText()), 300);
      assert.match(await page.locator("#checkout-result li").first().innerText(), /\+200/);
      assert.equal(balanceOf(await page.locator("#nav-balance").innerText()), 300);

      // Coming back later shows what arrived straight away, from the server.
      await page.reload();
      assert.equal(balanceOf(await page.locator("#new-balance").innerText()), 300);
    } finally {
      await session.close();
    }
  },
});

Deno.test({
  name: "ui: with no webhook the success page says the payment is still processing, not an error",
  ...browserTest,
  fn: async () => {
    const session = await startBrowserSession(WEBHOOK_ENV);
    try {
      const page = await session.newPage();
      await signUpInBrowser(page);
      // ?wait= shortens the 60 s the page waits by default, so the test need not sit through it.
      const response = await page.goto("/checkout/success?session_id=cs_never_paid&wait=1500");
      assert.equal(response?.status(), 200);
      await page.getByText("Your payment is still being processed").waitFor({ timeout: 15_000 });
      assert.equal(await page.getByText("Waiting for the payment to be confirmed").count(), 0);
      assert.equal(
        await page.locator("#checkout-result a[href='/dashboard']").count(),
        1,
        "it points to the dashboard, where the credits will appear",
      );
    } finally {
      await session.close();
    }
  },
});

Deno.test({
  name: "ui: an admin replays a failed event, adjusts a balance and runs the daily job",
  ...browserTest,
  fn: async () => {
    const session = await startBrowserSession({ ...WEBHOOK_ENV, ADMIN_EMAILS: ADMIN });
    try {
      // A payment from an email that has no verified account cannot be applied: it waits in the
      // inbox.
      const buyerEmail = `buyer-${crypto.randomUUID()}@test.local`;
      const event = stripeEvent(
        "checkout.session.completed",
        stripeCheckoutSession({
          email: buyerEmail,
          priceId: "price_pkg_standard",
          customer: uniqueId("cus"),
        }),
      );
      assert.equal((await postStripe(session.server.baseUrl, event)).json?.result, "failed");

      const buyer = await session.newPage();
      await signUpInBrowser(buyer, buyerEmail);
      assert.equal(balanceOf(await buyer.locator("#balance").innerText()), 100);
      // Not an admin: the admin pages do not exist for this user.
      assert.equal((await buyer.goto("/admin"))?.status(), 404);

      const { sql } = session.server.db;
      const page = await session.newPage();
      await signUpInBrowser(page, ADMIN);
      // An ADMIN_EMAILS address gets the admin pages once verified (and the buyer's address
      // matches the payment once verified).
      assert.equal(await page.getByRole("link", { name: "Admin" }).count(), 0);
      await verifyEmail(sql, ADMIN);
      await verifyEmail(sql, buyerEmail);
      await page.reload();
      await page.getByRole("link", { name: "Admin" }).click();
      await page.waitForURL("**/admin");
      const row = page.locator(`#inbox tr[data-event="${event.id}"]`);
      assert.match(await row.innerText(), /checkout\.session\.completed/);
      await row.getByRole("button", { name: `Replay event ${event.id}` }).click();
      await page.locator("#flash").waitFor();
      assert.equal(page.url(), `${session.server.baseUrl}/admin`, "no message in the URL");
      assert.match(await page.locator("#flash").innerText(), /processed/);
      assert.equal(await page.locator(`#inbox tr[data-event="${event.id}"]`).count(), 0);

      // Find the buyer, see the package in the ledger, adjust up and down with a reason.
      await page.getByLabel("Search users by email").fill(buyerEmail.slice(0, 12));
      await page.getByRole("button", { name: "Search" }).click();
      await page.getByRole("link", { name: buyerEmail }).click();
      assert.equal(balanceOf(await page.locator("#user-balance").innerText()), 300);
      assert.match(await page.locator('#ledger tr[data-kind="package"]').innerText(), /\+200/);

      await page.getByLabel(/^Credits/).fill("25");
      await page.getByLabel(/^Reason/).fill("ok");
      await page.locator("main").getByRole("button", { name: "Adjust" }).click();
      assert.match(await page.locator("#field-reason-error").innerText(), /say why/);
      assert.equal(await page.getByLabel(/^Credits/).inputValue(), "25");
      assert.equal(balanceOf(await page.locator("#user-balance").innerText()), 300);

      await page.getByLabel(/^Reason/).fill("Goodwill for the outage");
      await page.locator("main").getByRole("button", { name: "Adjust" }).click();
      await page.locator("#flash").waitFor();
      assert.match(await page.locator("#flash").innerText(), /Adjusted by \+25/);
      assert.equal(balanceOf(await page.locator("#user-balance").innerText()), 325);
      assert.match(
        await page.locator('#ledger tr[data-kind="adjustment"]').first().innerText(),
        /Goodwill for the outage[\s\S]*\+25/,
      );

      await page.reload();
      assert.equal(await page.locator("#flash").count(), 0, "a flash is shown once");
      await page.getByLabel(/^Credits/).fill("-1000");
      await page.getByLabel(/^Reason/).fill("Too much");
      await page.locator("main").getByRole("button", { name: "Adjust" }).click();
      assert.match(await page.locator("#field-amount-error").innerText(), /does not have/);
      await page.getByLabel(/^Credits/).fill("-40");
      await page.getByLabel(/^Reason/).fill("Duplicate grant removed");
      await page.locator("main").getByRole("button", { name: "Adjust" }).click();
      await page.locator("#flash").waitFor();
      assert.equal(balanceOf(await page.locator("#user-balance").innerText()), 285);
      assert.match(
        await page.locator('#ledger tr[data-kind="adjustment"]').first().innerText(),
        /Duplicate grant removed[\s\S]*-40[\s\S]*285/,
      );
      await buyer.goto("/dashboard");
      assert.equal(balanceOf(await buyer.locator("#balance").innerText()), 285);

      // Run the daily job now; the run is listed with its counts.
      await page.goto("/admin");
      await page.getByRole("button", { name: "Run the daily job now" }).click();
      await page.locator("#flash").waitFor();
      assert.match(await page.locator("#flash").innerText(), /Daily job done/);
      assert.match(await page.locator("#runs tbody tr").first().innerText(), /admin/);
    } finally {
      await session.close();
    }
  },
});
