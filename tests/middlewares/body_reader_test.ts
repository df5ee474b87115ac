// The body reader's copies (middlewares/body_reader.ts): the webhook path reads every body once, and a
// body that arrives in one chunk of its own reaches the route without being copied; a body in
// several chunks is put together in one buffer of its own.
import assert from "node:assert/strict";
import { Hono } from "hono";
import { readRawBody } from "../../routes/api/webhooks.ts";
import type { AppEnv } from "../../utils/app_env.ts";
import { bufferBodies } from "../../middlewares/body_reader.ts";
import type { HttpError } from "../../utils/errors.ts";

const LIMITS = { timeoutMs: 5_000, maxReads: 4, maxBytes: 1024 * 1024 };

/** An app whose one route hands back the bytes readRawBody gave it. */
function appSeeing(seen: Uint8Array[]): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(bufferBodies(LIMITS));
  app.post("/raw", async (c) => {
    seen.push(await readRawBody(c.req.raw));
    return c.body(null, 204);
  });
  return app;
}

function post(chunks: Uint8Array[]): Request {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
  return new Request(
    "http://tally.test/raw",
    { method: "POST", body, duplex: "half" } as
      & RequestInit
      & { duplex: "half" },
  );
}

Deno.test("a body that arrives in one chunk of its own reaches readRawBody without a copy", async () => {
  const seen: Uint8Array[] = [];
  const chunk = new TextEncoder().encode('{"id":"evt_one_chunk"}');
  const response = await appSeeing(seen).request(post([chunk]));
  assert.equal(response.status, 204);
  assert.equal(seen.length, 1);
  assert.ok(seen[0] === chunk, "the route got a copy of the one chunk");
});

Deno.test("a chunk that is a view of a larger buffer is copied, several chunks are joined", async () => {
  const seen: Uint8Array[] = [];
  const large = new Uint8Array(65_536).fill(120);
  const view = large.subarray(10, 20);
  await appSeeing(seen).request(post([view]));
  await appSeeing(seen).request(post([new Uint8Array([1, 2]), new Uint8Array([3]), view]));
  assert.equal(seen[0].buffer.byteLength, 10, "a view kept its whole 64 KB buffer");
  assert.deepEqual([...seen[0]], [...view]);
  assert.deepEqual([...seen[1]], [1, 2, 3, ...view]);
});

Deno.test("one reader caps every body: the API's limit under /api/, the forms' limit elsewhere", async () => {
  const app = new Hono<AppEnv>();
  app.use(bufferBodies({ ...LIMITS, maxBytes: 4096, maxFormBytes: 1024 }));
  app.post("*", (c) => c.body(null, 204));
  app.onError((error, c) => {
    const http = error as HttpError;
    return c.json({ error: http.code, message: http.message }, http.status);
  });
  const send = (path: string, size: number) =>
    app.request(path, { method: "POST", body: new Uint8Array(size).fill(120) });

  assert.equal((await send("/api/raw", 3000)).status, 204);
  assert.equal((await send("/login", 1000)).status, 204);
  const form = await send("/login", 2000);
  assert.equal(form.status, 413);
  assert.deepEqual(await form.json(), {
    error: "payload_too_large",
    message: "the request body is larger than 1 KB",
  });
  assert.equal((await send("/api/raw", 5000)).status, 413);
});
