// Request bodies are read here, once, before any route sees them (docs/api.md#headers-and-limits):
// the whole body must arrive within the deadline (BODY_TIMEOUT_SECONDS, 30 s) or the answer is 408;
// only so many bodies are read at once (BODY_READS_MAX), more answer 503 with Retry-After; a client
// that goes away mid-body is answered (to nobody) without a stack trace in the log. The bytes read
// so far are held only by this one call, so they are garbage as soon as it returns or throws.
// Routes then read the buffered copy (c.req.json(), parseBody(), readRawBody()).
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../utils/app_env.ts";
import { HttpError } from "../utils/errors.ts";

/**
 * maxBytes caps every body; maxFormBytes, when set, caps the bodies of paths outside /api/ (the
 * pages' forms are a few short fields). One reader enforces both, so no other body limit is needed.
 */
export type BodyLimits = {
  timeoutMs: number;
  maxReads: number;
  maxBytes: number;
  maxFormBytes?: number;
};

function tooLarge(maxBytes: number): HttpError {
  const size = maxBytes >= 1024 * 1024
    ? `${maxBytes / (1024 * 1024)} MB`
    : `${Math.round(maxBytes / 1024)} KB`;
  return new HttpError(413, "payload_too_large", `the request body is larger than ${size}`);
}

const isApi = (path: string) => path === "/api" || path.startsWith("/api/");

/** The chunk as a Uint8Array over an ArrayBuffer that holds exactly its bytes, else null. */
function wholeBuffer(chunk: Uint8Array): Uint8Array<ArrayBuffer> | null {
  return chunk.buffer instanceof ArrayBuffer && chunk.byteOffset === 0 &&
      chunk.byteLength === chunk.buffer.byteLength
    ? chunk as Uint8Array<ArrayBuffer>
    : null;
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
  // The first chunk is held as it came until a second one arrives: most bodies come in one chunk,
  // which is then returned without a copy when it is a whole buffer of its own (one copy else).
  let first: Uint8Array | null = null;
  let buffer: Uint8Array<ArrayBuffer> | null = null;
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
      let target: Uint8Array<ArrayBuffer>;
      if (buffer !== null) {
        target = buffer;
      } else if (first === null) {
        first = chunk;
        size = chunk.byteLength;
        continue;
      } else {
        target = new Uint8Array(
          Math.min(
            limits.maxBytes,
            Math.max(1024, Math.min(declaredSize, 16384), size + chunk.byteLength),
          ),
        );
        target.set(first);
        first = null;
      }
      if (size + chunk.byteLength > target.byteLength) {
        const grown: Uint8Array<ArrayBuffer> = new Uint8Array(
          Math.min(limits.maxBytes, Math.max(size + chunk.byteLength, target.byteLength * 2)),
        );
        grown.set(target.subarray(0, size));
        target = grown;
      }
      target.set(chunk, size);
      size += chunk.byteLength;
      buffer = target;
    }
    if (buffer !== null) return buffer.slice(0, size);
    if (first === null) return new Uint8Array();
    return wholeBuffer(first) ?? first.slice();
  } finally {
    // The reader is not released: nothing else reads this stream, and a release makes a TypeError
    // (with its stack trace) for the stream's closed promise, on every request.
    clearTimeout(timer);
  }
}

/** The bytes of each buffered request, for a route that wants them as they came (readRawBody):
 * reading them back through the request's body stream would copy them once more. */
const bufferedBytes = new WeakMap<Request, Uint8Array<ArrayBuffer>>();

/** The body bufferBodies read for this request (c.req.raw), or undefined. */
export function bufferedBody(request: Request): Uint8Array<ArrayBuffer> | undefined {
  return bufferedBytes.get(request);
}

/** The middleware: buffers every request body under the limits, then calls the routes. */
export function bufferBodies(limits: BodyLimits): MiddlewareHandler<AppEnv> {
  let reading = 0;
  return async (c, next) => {
    const body = c.req.raw.body;
    if (!body) return await next();
    const maxBytes = limits.maxFormBytes !== undefined && !isApi(c.req.path)
      ? limits.maxFormBytes
      : limits.maxBytes;
    const declared = Number(c.req.header("content-length") ?? "0") || 0;
    if (declared > maxBytes) throw tooLarge(maxBytes);
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
      bytes = await readWithin(body, declared, { ...limits, maxBytes });
    } finally {
      reading--;
    }
    c.req.raw = new Request(c.req.raw, { body: bytes });
    bufferedBytes.set(c.req.raw, bytes);
    await next();
  };
}
