// Request bodies are read here, once, before any route sees them (contract section 5): the whole
// body must arrive within the deadline (BODY_TIMEOUT_SECONDS, 30 s) or the answer is 408; only
// so many bodies are read at once (BODY_READS_MAX), more answer 503 with Retry-After; a client
// that goes away mid-body is answered (to nobody) without a stack trace in the log. The bytes
// read so far are held only by this one call, so they are garbage as soon as it returns or
// throws. Routes then read the buffered copy (c.req.json(), parseBody(), readRawBody()).
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../utils/app_env.ts";
import { HttpError } from "../utils/errors.ts";

export type BodyLimits = { timeoutMs: number; maxReads: number; maxBytes: number };

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(
    413,
    "payload_too_large",
    `the request body is larger than ${maxBytes / (1024 * 1024)} MB`,
  );
}

/** Reads a whole body within the deadline and the size limit, or throws the HttpError to answer. */
async function readWithin(
  body: ReadableStream<Uint8Array>,
  declaredSize: number,
  limits: BodyLimits,
): Promise<Uint8Array<ArrayBuffer>> {
  const reader = body.getReader();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reader.cancel().catch(() => {});
  }, limits.timeoutMs);
  // The bytes are copied into one buffer of our own: a chunk the runtime hands over may be a view
  // of a much larger buffer (a body trickled one byte at a time would otherwise hold a whole
  // read buffer per byte), and keeping the chunk would keep all of it.
  // It starts small whatever Content-Length says, so a slow client cannot reserve 1 MB up front.
  let buffer = new Uint8Array(
    Math.min(limits.maxBytes, Math.max(1024, Math.min(declaredSize, 16384))),
  );
  let size = 0;
  try {
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch {
        // The client closed the connection (or it broke) before the body was complete. Nobody
        // reads this answer; it is not a fault of the server, so nothing is logged.
        throw new HttpError(400, "invalid_request", "the request body was cut off");
      }
      if (timedOut) {
        throw new HttpError(
          408,
          "request_timeout",
          `the request body did not arrive within ${limits.timeoutMs / 1000} s`,
          { Connection: "close" },
        );
      }
      if (step.done) break;
      const chunk = step.value;
      if (size + chunk.byteLength > limits.maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(limits.maxBytes);
      }
      if (size + chunk.byteLength > buffer.byteLength) {
        const grown = new Uint8Array(
          Math.min(limits.maxBytes, Math.max(size + chunk.byteLength, buffer.byteLength * 2)),
        );
        grown.set(buffer.subarray(0, size));
        buffer = grown;
      }
      buffer.set(chunk, size);
      size += chunk.byteLength;
    }
    return buffer.slice(0, size);
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}

/** The middleware: buffers every request body under the limits, then calls the routes. */
export function bufferBodies(limits: BodyLimits): MiddlewareHandler<AppEnv> {
  let reading = 0;
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return await next();
    const declared = Number(c.req.header("content-length") ?? "0") || 0;
    if (declared > limits.maxBytes) throw tooLarge(limits.maxBytes);
    if (reading >= limits.maxReads) {
      throw new HttpError(
        503,
        "unavailable",
        "the server is reading too many request bodies; try again shortly",
        { "Retry-After": "2" },
      );
    }
    reading++;
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await readWithin(body, declared, limits);
    } finally {
      reading--;
    }
    c.req.raw = new Request(c.req.raw, { body: bytes });
    await next();
  };
}
