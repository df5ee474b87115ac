// A real TCP client that sends a request's headers at once and then its body one byte at a time,
// as a slow or hostile client does; for the tests of the body deadline and the cap on bodies
// read at once.

export type SlowRequest = {
  /** The status of the server's answer; throws when none arrived within timeoutMs. */
  status(timeoutMs: number): Promise<number>;
  /** Bytes of the body sent so far. */
  sent(): number;
  /** Goes away: closes the connection wherever the body is. */
  close(): void;
};

/** Opens the connection, sends the headers (with the body's Content-Length) and starts the drip. */
export async function trickle(
  baseUrl: string,
  path: string,
  headers: Record<string, string>,
  body: string,
  options: { everyMs: number; method?: string },
): Promise<SlowRequest> {
  const url = new URL(baseUrl);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  const bytes = new TextEncoder().encode(body);
  const head = [
    `${options.method ?? "POST"} ${path} HTTP/1.1`,
    `host: ${url.host}`,
    `content-length: ${bytes.byteLength}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    "",
    "",
  ].join("\r\n");
  await conn.write(new TextEncoder().encode(head));
  let closed = false;
  let sent = 0;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // Already closed by the server.
    }
  };
  const drip = setInterval(() => {
    if (closed || sent >= bytes.byteLength) return clearInterval(drip);
    conn.write(bytes.subarray(sent, sent + 1)).then(() => sent++, () => clearInterval(drip));
  }, options.everyMs);
  const answer = (async () => {
    const buffer = new Uint8Array(1024);
    let text = "";
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
    if (!match) throw new Error(`no HTTP answer: ${JSON.stringify(text)}`);
    return Number(match[1]);
  })();
  answer.catch(() => {});
  return {
    async status(timeoutMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      try {
        return await Promise.race([answer, late]);
      } finally {
        clearTimeout(timer);
      }
    },
    sent: () => sent,
    close: () => {
      clearInterval(drip);
      close();
    },
  };
}
