// utils/log.ts: one JSON object per line (time, level, msg, then the fields) or one readable line,
// secrets redacted at any depth, and LOG_FORMAT validated with the other settings.
import assert from "node:assert/strict";
import { parseConfig } from "../../utils/config.ts";
import { configureLog, formatLine, log, redact } from "../../utils/log.ts";

const AT = new Date("2026-12-02T03:04:05.678Z");

Deno.test("a JSON line is time, level and msg first, then the fields", () => {
  const line = formatLine("json", AT, "info", "request", { requestId: "r1", status: 200 });
  assert.ok(!line.includes("\n"));
  assert.equal(
    line,
    '{"time":"2026-12-02T03:04:05.678Z","level":"info","msg":"request","requestId":"r1","status":200}',
  );
  const clash = JSON.parse(formatLine("json", AT, "warn", "m", { time: "x", msg: "y" }));
  assert.equal(clash.time, AT.toISOString());
  assert.equal(clash.msg, "m");
});

Deno.test("a text line is readable: time, level, message, name=value pairs", () => {
  const line = formatLine("text", AT, "error", "unexpected error", {
    requestId: "r1",
    route: "/api/v1/customers/:externalId",
    note: "two words",
    missing: undefined,
  });
  assert.equal(
    line,
    '2026-12-02T03:04:05.678Z ERROR unexpected error requestId=r1 route=/api/v1/customers/:externalId note="two words"',
  );
});

Deno.test("secret-named fields are redacted wherever they sit; ids of keys are kept", () => {
  const fields = {
    password: "hunter2-password",
    headers: new Headers({ Authorization: "Bearer tally_sk_secret", Cookie: "tally_session=abc" }),
    nested: [{ sessionToken: "tok-123", "x-api-key": "k-456", clientSecret: "s-789" }],
    apiKeyId: 42,
    userId: "u1",
  };
  const line = formatLine("json", AT, "info", "m", fields);
  for (
    const secret of ["hunter2", "tally_sk_secret", "tally_session=abc", "tok-123", "k-456", "s-789"]
  ) {
    assert.ok(!line.includes(secret), `${secret} leaked: ${line}`);
  }
  const parsed = JSON.parse(line);
  assert.equal(parsed.apiKeyId, 42);
  assert.equal(parsed.userId, "u1");
  assert.equal(parsed.password, "[redacted]");
  assert.equal(parsed.headers.authorization, "[redacted]");
  assert.equal(parsed.nested[0].sessionToken, "[redacted]");
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.deepEqual(redact(circular), { self: "[circular]" });
});

Deno.test("errors are logged as name, message and stack, and log() writes to the configured writer", () => {
  const lines: string[] = [];
  const restore = configureLog({ format: "json", write: (line) => lines.push(line) });
  try {
    log("error", "unexpected error", { error: new TypeError("boom") });
  } finally {
    restore();
  }
  assert.equal(lines.length, 1);
  const parsed = JSON.parse(lines[0]);
  assert.equal(parsed.level, "error");
  assert.equal(parsed.error.name, "TypeError");
  assert.equal(parsed.error.message, "boom");
  assert.match(parsed.error.stack, /log_test/);
  assert.ok(!Number.isNaN(Date.parse(parsed.time)));
});

Deno.test("LOG_FORMAT is json or text; anything else stops start-up naming it", () => {
  assert.equal(parseConfig({ LOG_FORMAT: "text" }).logFormat, "text");
  assert.equal(parseConfig({ LOG_FORMAT: "json" }).logFormat, "json");
  // Unset: JSON unless stdout is a terminal (the test runner's stdout may be either).
  assert.equal(parseConfig({}).logFormat, Deno.stdout.isTerminal() ? "text" : "json");
  assert.throws(
    () => parseConfig({ LOG_FORMAT: "xml" }),
    /invalid setting LOG_FORMAT: json or text/,
  );
});
