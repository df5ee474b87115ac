// middlewares/api_key.ts across server processes: two main.ts processes on one database; a key
// revoked through one answers 401 on the very next request to the other (no server caches a key).
import assert from "node:assert/strict";
import { createApiKey } from "../../utils/api_keys.ts";
import { freshDatabase } from "../helpers/db.ts";
import { closedPort } from "../helpers/http.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const ADMIN = "admin@two-servers.test";

function startServer(databaseUrl: string, port: number): Deno.ChildProcess {
  const env: Record<string, string> = { RUST_BACKTRACE: "0", NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value) env[name] = value;
  }
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts"],
    cwd: ROOT,
    clearEnv: true,
    env: {
      ...env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: "127.0.0.1",
      APP_URL: `http://127.0.0.1:${port}`,
      SCHEDULER: "off",
      ADMIN_EMAILS: ADMIN,
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Waits until the server answers (its OpenAPI document needs no key). */
async function ready(port: number): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/openapi.json`);
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the server on ${port} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

Deno.test("a key revoked through one server process is refused by another on the next request", async () => {
  const db = await freshDatabase({ max: 2 });
  const ports = [closedPort(), closedPort()];
  const servers = ports.map((port) => startServer(db.url, port));
  try {
    await Promise.all(ports.map(ready));
    const made = await createApiKey(db.sql, {
      name: "two servers",
      scopes: ["read", "write"],
      createdBy: null,
    });
    const ask = async (port: number) => {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/customers/someone`, {
        headers: { authorization: `Bearer ${made.key}` },
      });
      return { status: response.status, body: await response.json() };
    };
    // Both accept it (the customer does not exist, so 404 customer_not_found, not 401).
    for (const port of ports) assert.equal((await ask(port)).body.error, "customer_not_found");

    // An admin revokes it through the first server's admin API; the second sees it at once.
    const first = `http://127.0.0.1:${ports[0]}`;
    const signup = await fetch(`${first}/api/auth/signup`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: first },
      body: JSON.stringify({ email: ADMIN, password: "correct horse battery" }),
    });
    assert.equal(signup.status, 201);
    await signup.body?.cancel();
    await db.sql`select app.verify_email(${ADMIN})`;
    const cookie = signup.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    const revoke = await fetch(`${first}/api/admin/api-keys/${made.id}`, {
      method: "DELETE",
      headers: { cookie, origin: first },
    });
    assert.equal(revoke.status, 204);
    for (const port of [...ports].reverse()) {
      const answer = await ask(port);
      assert.equal(answer.status, 401);
      assert.equal(answer.body.error, "unauthorized");
    }
  } finally {
    for (const server of servers) {
      server.kill("SIGTERM");
      await server.status;
    }
    await db.drop();
  }
});
