// Tally's HTTP app with a fresh database, for HTTP-level tests: on a free port (startTestServer),
// or in process with Hono's app.request() and no socket (startTestApp).
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
 * Starts the app; env overrides the settings of docs/configuration.md (APP_URL defaults to it, and
 * SIGNUP_LIMIT_PER_HOUR to 0).
 */
export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const db = await freshDatabase();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = testConfig(db, baseUrl, port, env);
  const app = createApp({ sql: db.sql, config });
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, app.fetch);
  return {
    baseUrl,
    db,
    config,
    close: async () => {
      await server.shutdown();
      await db.drop();
    },
  };
}

type Fetch = (url: string, init?: RequestInit) => Promise<Response>;

/** Apps started by startTestApp, by their base URL: send() and Client reach them through this. */
const inProcess = new Map<string, Fetch>();
let appCount = 0;

/**
 * The app as startTestServer starts it, but served in process with app.request(): no port, no
 * socket. Its baseUrl (also its APP_URL) names no host; send() and Client, given it, call the
 * app directly. For tests that only send requests and need nothing of a real connection (client
 * address, slow or chunked bodies, TCP, a browser, a child process).
 */
export async function startTestApp(env: Record<string, string> = {}): Promise<TestServer> {
  const db = await freshDatabase();
  const baseUrl = `http://app-${Deno.pid}-${++appCount}.test`;
  const config = testConfig(db, baseUrl, 8000, env);
  const app = createApp({ sql: db.sql, config });
  inProcess.set(baseUrl, async (url, init) => await app.request(url, init));
  return {
    baseUrl,
    db,
    config,
    close: async () => {
      inProcess.delete(baseUrl);
      await db.drop();
    },
  };
}

/** fetch, or app.request() when baseUrl is an app started by startTestApp. */
export function fetchFrom(baseUrl: string): Fetch {
  return inProcess.get(baseUrl) ?? fetch;
}

function testConfig(
  db: TestDatabase,
  baseUrl: string,
  port: number,
  env: Record<string, string>,
): Config {
  return parseConfig({
    APP_URL: baseUrl,
    SCHEDULER: "off",
    // The suite signs up many users from 127.0.0.1; a test that is about the limit sets it.
    SIGNUP_LIMIT_PER_HOUR: "0",
    ...env,
    DATABASE_URL: db.url,
    PORT: String(port),
  });
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
    const response = await fetchFrom(this.baseUrl)(`${this.baseUrl}${path}`, init);
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
