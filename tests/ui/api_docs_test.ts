// /docs/api in a real browser: Swagger UI, served by Tally itself, renders the /api/v1 routes
// from /api/v1/openapi.json under the pages' CSP, with nothing fetched from another origin.
import assert from "node:assert/strict";
import { browserTest, startBrowserSession } from "../helpers/browser.ts";

Deno.test({
  name: "ui: /docs/api renders the /api/v1 routes with no CSP violation and no other origin",
  ...browserTest,
  fn: async () => {
    const session = await startBrowserSession();
    try {
      const page = await session.newPage();
      const origin = new URL(session.server.baseUrl).origin;
      const elsewhere: string[] = [];
      // Only the server answers; a request to anywhere else is refused and remembered.
      await page.context().route("**/*", (route) => {
        const url = route.request().url();
        if (new URL(url).origin === origin || url.startsWith("data:")) return route.continue();
        elsewhere.push(url);
        return route.abort();
      });
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
      page.on("console", (message) => {
        if (message.location().url.endsWith("/favicon.ico")) return;
        if (message.type() === "error") problems.push(`console: ${message.text()}`);
      });
      await page.addInitScript(() => {
        const seen: string[] = [];
        (globalThis as unknown as { cspViolations: string[] }).cspViolations = seen;
        document.addEventListener("securitypolicyviolation", (event) => {
          seen.push(`${event.violatedDirective} ${event.blockedURI}`);
        });
      });

      const response = await page.goto("/docs/api");
      assert.ok(response);
      assert.equal(response.status(), 200);
      assert.match(response.headers()["content-security-policy"] ?? "", /script-src 'self'/);

      // Swagger UI lists each operation as a block with its method and path.
      await page.locator(".opblock").first().waitFor({ timeout: 20_000 });
      const operations = await page.locator(".opblock-summary-path").allInnerTexts();
      const shown = operations.map((text) => text.replace(/\u200b/g, "").trim());
      for (
        const path of [
          "/api/v1/customers/{externalId}",
          "/api/v1/customers/{externalId}/consume",
          "/api/v1/customers/{externalId}/reservations",
          "/api/v1/reservations/{id}/settle",
          "/api/v1/usage/batch",
        ]
      ) {
        assert.ok(shown.includes(path), `${path} is not listed: ${JSON.stringify(shown)}`);
      }
      assert.equal(await page.locator(".opblock-post").count() > 5, true);
      // The title of the document and the bearer scheme's Authorize button.
      await page.getByText("Tally server-to-server API").first().waitFor();
      await page.locator("button.authorize").waitFor();

      const violations = await page.evaluate(() =>
        (globalThis as unknown as { cspViolations: string[] }).cspViolations
      );
      assert.deepEqual(violations, [], "CSP violations");
      assert.deepEqual(problems, [], "script errors");
      assert.deepEqual(elsewhere, [], "requests to another origin");
    } finally {
      await session.close();
    }
  },
});
