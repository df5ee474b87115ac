// Tally's HTTP app on a free port with a fresh database, for HTTP-level tests.
import { createApp } from "../../app.ts";
import { type Config, parseConfig } from "../../utils/config.ts";
import { freshDatabase, type TestDatabase } from "./db.ts";

export type TestServer = {
  baseUrl: string;
  db: TestDatabase;
  config: Config;
  close(): Promise<void>;
};

/**
 * Starts the app; env overrides the settings of contract section 2 (APP_URL defaults to it, and
 * SIGNUP_LIMIT_PER_HOUR to 0).
 */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const db = await freshDatabase();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const config = parseConfig({
    APP_URL: `http://127.0.0.1:${port}`,
    SCHEDULER: "off",
    // The suite signs up many users from 127.0.0.1; a test that is about the limit sets it.
    SIGNUP_LIMIT_PER_HOUR: "0",
    ...env,
    DATABASE_URL: db.url,
    PORT: String(port),
  });
  const app = createApp({ sql: db.sql, config });
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, app.fetch);
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    db,
    config,
    close: async () => {
      await server.shutdown();
      await db.drop();
    },
  };
}

/** A tiny cookie-keeping client, as a browser on APP_URL's origin would send requests. */
export class Client {
  cookie: string | undefined;
  /** origin: the Origin header of its non-GET requests (APP_URL's, when that is not baseUrl). */
  constructor(readonly baseUrl: string, readonly origin: string = baseUrl) {}

  async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; json: unknown; headers: Headers }> {
    const init: RequestInit = {
      method,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...(method !== "GET" ? { origin: this.origin } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    };
    const response = await fetch(`${this.baseUrl}${path}`, init);
    const setCookie = response.headers.get("set-cookie");
    if (setCookie) {
      const pair = setCookie.split(";")[0];
      this.cookie = pair.endsWith("=") ? undefined : pair;
    }
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: response.status, json, headers: response.headers };
  }

  async signup(email = `${crypto.randomUUID()}@test.local`, password = "correct horse 1") {
    const result = await this.request("POST", "/api/auth/signup", { email, password });
    if (result.status !== 201) throw new Error(`signup failed: ${JSON.stringify(result.json)}`);
    return (result.json as { user: { id: string; email: string } }).user;
  }
}
