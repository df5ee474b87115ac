// Settings (docs/configuration.md), read once from the environment and validated at start-up.
// A bad value stops start-up with one line naming the variable; secrets are never echoed.
import { z } from "zod";
import { defaultLogFormat, type LogFormat } from "./log.ts";

const optionalSecret = z.string().min(1).optional();

const EnvSchema = z.object({
  DATABASE_URL: z.url().optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  APP_URL: z.url().optional(),
  PLANS_FILE: z.string().min(1).default("plans.json"),
  STRIPE_SECRET_KEY: optionalSecret,
  STRIPE_WEBHOOK_SECRET: optionalSecret,
  STRIPE_API_URL: z.url().optional(),
  CREEM_API_KEY: optionalSecret,
  CREEM_WEBHOOK_SECRET: optionalSecret,
  CREEM_API_URL: z.url().optional(),
  CRON_SECRET: optionalSecret,
  CRON_JOBS_USERNAME: optionalSecret,
  CRON_JOBS_PASSWORD: optionalSecret,
  METRICS_TOKEN: optionalSecret,
  TRUST_PROXY: z.enum(["on", "off"], "on or off").default("off"),
  SIGNUP_LIMIT_PER_HOUR: z.coerce.number().int().min(0).max(2_147_483_647).default(20),
  SCHEDULER: z.enum(["auto", "pg_cron", "deno", "off"]).default("auto"),
  ADMIN_EMAILS: z.string().default(""),
  HOST: z.union([z.ipv4(), z.ipv6(), z.hostname()], { error: "not an IP address or host name" })
    .default("0.0.0.0"),
  // A request body must arrive within this time (408 after it); smaller in tests.
  BODY_TIMEOUT_SECONDS: z.coerce.number().positive().max(3600).default(30),
  // How many request bodies are read at once; more answer 503 with Retry-After.
  BODY_READS_MAX: z.coerce.number().int().min(1).default(128),
  LOG_FORMAT: z.enum(["json", "text"], "json or text").optional(),
});

export type Config = {
  databaseUrl: string | undefined;
  port: number;
  appUrl: string;
  appOrigin: string;
  secureCookies: boolean;
  plansFile: string;
  stripe: { secretKey: string; apiUrl: string | undefined } | null;
  stripeWebhookSecret: string | undefined;
  creem: { apiKey: string; apiUrl: string } | null;
  creemWebhookSecret: string | undefined;
  cronSecret: string | undefined;
  cronBasic: { username: string; password: string } | null;
  /** Bearer token GET /metrics requires; undefined: /metrics is open. */
  metricsToken: string | undefined;
  /** The client address is X-Forwarded-For's last hop (behind a reverse proxy). */
  trustProxy: boolean;
  /** Sign-ups accepted per client address per hour; 0: no limit. */
  signupLimitPerHour: number;
  scheduler: "auto" | "pg_cron" | "deno" | "off";
  adminEmails: ReadonlySet<string>;
  host: string;
  bodyTimeoutMs: number;
  maxBodyReads: number;
  /** Unset: JSON unless standard output is a terminal (utils/log.ts). */
  logFormat: LogFormat;
};

export class ConfigError extends Error {}

/** Turns raw environment variables into a Config, or throws a ConfigError naming the variable. */
export function parseConfig(env: Record<string, string | undefined>): Config {
  // An empty variable counts as unset, as shells and .env files commonly produce them.
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ""),
  );
  const parsed = EnvSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue.path[0] ?? "environment");
    throw new ConfigError(`invalid setting ${name}: ${issue.message}`);
  }
  const e = parsed.data;
  if ((e.CRON_JOBS_USERNAME === undefined) !== (e.CRON_JOBS_PASSWORD === undefined)) {
    const missing = e.CRON_JOBS_USERNAME === undefined
      ? "CRON_JOBS_USERNAME"
      : "CRON_JOBS_PASSWORD";
    throw new ConfigError(
      `invalid setting ${missing}: set both CRON_JOBS_USERNAME and CRON_JOBS_PASSWORD`,
    );
  }
  const appUrl = (e.APP_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, "");
  const creemKey = e.CREEM_API_KEY;
  return {
    databaseUrl: e.DATABASE_URL,
    port: e.PORT,
    appUrl,
    appOrigin: new URL(appUrl).origin,
    secureCookies: appUrl.startsWith("https:"),
    plansFile: e.PLANS_FILE,
    stripe: e.STRIPE_SECRET_KEY
      ? { secretKey: e.STRIPE_SECRET_KEY, apiUrl: e.STRIPE_API_URL }
      : null,
    stripeWebhookSecret: e.STRIPE_WEBHOOK_SECRET,
    creem: creemKey
      ? {
        apiKey: creemKey,
        apiUrl: e.CREEM_API_URL ??
          (creemKey.startsWith("creem_test_")
            ? "https://test-api.creem.io"
            : "https://api.creem.io"),
      }
      : null,
    creemWebhookSecret: e.CREEM_WEBHOOK_SECRET,
    cronSecret: e.CRON_SECRET,
    cronBasic: e.CRON_JOBS_USERNAME && e.CRON_JOBS_PASSWORD
      ? { username: e.CRON_JOBS_USERNAME, password: e.CRON_JOBS_PASSWORD }
      : null,
    metricsToken: e.METRICS_TOKEN,
    trustProxy: e.TRUST_PROXY === "on",
    signupLimitPerHour: e.SIGNUP_LIMIT_PER_HOUR,
    scheduler: e.SCHEDULER,
    adminEmails: new Set(
      e.ADMIN_EMAILS.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s.length > 0),
    ),
    host: e.HOST,
    bodyTimeoutMs: Math.round(e.BODY_TIMEOUT_SECONDS * 1000),
    maxBodyReads: e.BODY_READS_MAX,
    logFormat: e.LOG_FORMAT ?? defaultLogFormat(),
  };
}
