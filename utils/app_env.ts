// What every request handler can reach through Hono's context.
import type { Sql } from "../db/client.ts";
import type { Config } from "./config.ts";
import type { Metrics } from "./metrics.ts";

/** verified: the user's email address is verified (docs/api.md#accounts-and-sessions). */
export type SessionUser = { id: string; email: string; verified: boolean };

/** The API key of an /api/v1 request (middlewares/api_key.ts). */
export type ApiKey = { id: number; scopes: ("read" | "write")[] };

export type AppEnv = {
  Variables: {
    sql: Sql;
    config: Config;
    /** The app's own registry (utils/metrics.ts). */
    metrics: Metrics;
    user: SessionUser | undefined;
    /** Set by requireApiKey on the /api/v1 routes; unset elsewhere. */
    apiKey: ApiKey;
    /** Set first of all by middlewares/request_log.ts; sent back as X-Request-Id. */
    requestId: string;
  };
};
