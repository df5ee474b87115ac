// POST|GET /api/cron/daily: the daily job for external schedulers
// (docs/api.md#the-scheduler-endpoint).
import { Hono } from "hono";
import type { AppEnv } from "../../utils/app_env.ts";
import type { Config } from "../../utils/config.ts";
import { HttpError } from "../../utils/errors.ts";
import { sameSecret } from "../../utils/secrets.ts";

export async function cronAuthorized(config: Config, header: string | undefined): Promise<boolean> {
  if (!header) return false;
  const space = header.indexOf(" ");
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === "bearer" && config.cronSecret) {
    return await sameSecret(value, config.cronSecret);
  }
  if (scheme === "basic" && config.cronBasic) {
    let decoded: string;
    try {
      decoded = atob(value);
    } catch {
      return false;
    }
    const expected = `${config.cronBasic.username}:${config.cronBasic.password}`;
    return await sameSecret(decoded, expected);
  }
  return false;
}

export const cron = new Hono<AppEnv>();

cron.on(["GET", "POST"], "/daily", async (c) => {
  if (!await cronAuthorized(c.var.config, c.req.header("Authorization"))) {
    throw new HttpError(401, "unauthorized", "missing or wrong cron credentials", {
      "WWW-Authenticate": 'Bearer realm="cron"',
    });
  }
  // A procedure that commits per batch: CALLed on its own, never inside a transaction.
  const [run] = await c.var.sql<{ expired: number; granted: number; duration_ms: number }[]>`
    call credits.run_daily(now(), 'http')`;
  return c.json({ expired: run.expired, granted: run.granted, durationMs: run.duration_ms });
});
