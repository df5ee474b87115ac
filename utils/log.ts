// The one logger of the server: one line per call on standard output, a JSON object per line
// (LOG_FORMAT=json, for log collectors) or a readable line (text, for a terminal). Fields whose
// name says they hold a secret are redacted wherever they sit, so no call can leak one by mistake.

export type LogLevel = "info" | "warn" | "error";
export type LogFormat = "json" | "text";
export type LogFields = Record<string, unknown>;

/**
 * Words that make a field secret wherever they appear in its name (api_key, x-api-key,
 * sessionToken), unless the name ends in "id": apiKeyId names a key without being one.
 */
const SECRET_NAMES = ["authorization", "cookie", "password", "token", "key", "secret"];
const REDACTED = "[redacted]";

/** A terminal gets readable lines; anything else (a pipe, a file, a collector) gets JSON. */
export function defaultLogFormat(): LogFormat {
  try {
    return Deno.stdout.isTerminal() ? "text" : "json";
  } catch {
    return "json";
  }
}

const encoder = new TextEncoder();
const writeStdout = (line: string) => {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
};

let format: LogFormat = defaultLogFormat();
let write: (line: string) => void = writeStdout;

/**
 * Sets the format (main.ts, from LOG_FORMAT) and, for tests, where lines go. Returns a function
 * that restores the previous settings.
 */
export function configureLog(options: { format?: LogFormat; write?: (line: string) => void }) {
  const previous = { format, write };
  if (options.format) format = options.format;
  if (options.write) write = options.write;
  return () => {
    format = previous.format;
    write = previous.write;
  };
}

function isSecretName(name: string): boolean {
  const lower = name.toLowerCase().replace(/[^a-z0-9]/g, "");
  return !lower.endsWith("id") && SECRET_NAMES.some((secret) => lower.includes(secret));
}

/** A copy of value with every secret-named field replaced, at any depth; errors become text. */
export function redact(value: unknown, seen = new WeakSet<object>()): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack };
  }
  if (value === null || typeof value !== "object") {
    return typeof value === "bigint" ? value.toString() : value;
  }
  if (seen.has(value)) return "[circular]";
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => redact(item, seen));
  if (value instanceof Headers) value = Object.fromEntries(value.entries());
  if (value instanceof Date) return value.toISOString();
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map((
      [name, field],
    ) => [name, isSecretName(name) ? REDACTED : redact(field, seen)]),
  );
}

function textValue(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}

/** Formats one line; exported for the tests of both formats. */
export function formatLine(
  lineFormat: LogFormat,
  time: Date,
  level: LogLevel,
  message: string,
  fields: LogFields,
): string {
  const safe = redact(fields) as LogFields;
  if (lineFormat === "json") {
    // The three fixed keys come first and a field cannot overwrite them.
    const { time: _t, level: _l, msg: _m, ...rest } = safe;
    return JSON.stringify({ time: time.toISOString(), level, msg: message, ...rest });
  }
  const pairs = Object.entries(safe)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name}=${textValue(value)}`);
  return [time.toISOString(), level.toUpperCase().padEnd(5), message, ...pairs].join(" ");
}

/** Writes one line. A logger must never throw into the request it describes. */
export function log(level: LogLevel, message: string, fields: LogFields = {}): void {
  try {
    write(formatLine(format, new Date(), level, message, fields));
  } catch {
    // Standard output is closed (the process is stopping): nothing useful is left to do.
  }
}
