// Debian's chromium driven by playwright-core, for the browser tests (tests/ui/*_test.ts).
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { ensureUiBuilt } from "../../utils/static_files.ts";
import { startTestServer, type TestServer } from "./server.ts";

export const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

export type BrowserSession = {
  server: TestServer;
  browser: Browser;
  /** A new context (cookies of its own) with a page open; JavaScript can be switched off. */
  newPage(options?: { javaScript?: boolean; width?: number }): Promise<Page>;
  close(): Promise<void>;
};

export async function startBrowserSession(
  env: Record<string, string> = {},
): Promise<BrowserSession> {
  await ensureUiBuilt();
  const server = await startTestServer(env);
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        // No --user-data-dir: playwright gives every launch a fresh temporary profile itself.
      ],
    });
  } catch (error) {
    await server.close();
    throw error;
  }
  const contexts: BrowserContext[] = [];
  return {
    server,
    browser,
    async newPage(options = {}) {
      const context = await browser.newContext({
        baseURL: server.baseUrl,
        javaScriptEnabled: options.javaScript ?? true,
        viewport: { width: options.width ?? 1024, height: 800 },
      });
      contexts.push(context);
      return await context.newPage();
    },
    async close() {
      for (const context of contexts) await context.close().catch(() => {});
      await browser.close().catch(() => {});
      await server.close();
    },
  };
}

/** Signs up through the HTML form and lands on the dashboard. */
export async function signUpInBrowser(
  page: Page,
  email = `${crypto.randomUUID()}@test.local`,
  password = "correct horse 1",
): Promise<string> {
  await page.goto("/signup");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.locator("main").getByRole("button", { name: "Sign up" }).click();
  await page.waitForURL("**/dashboard");
  await islandsHydrated(page);
  return email;
}

/**
 * Waits until every island of the page has hydrated. Islands load on their own after the page, so
 * a click that comes sooner reaches the server's plain HTML (a form post and a new page) instead.
 */
export async function islandsHydrated(page: Page): Promise<void> {
  await page.waitForFunction(() =>
    [...document.querySelectorAll("[data-island-id]")].every((mark) =>
      mark.hasAttribute("data-hydrated")
    )
  );
}

export const browserTest = { sanitizeOps: false, sanitizeResources: false };
