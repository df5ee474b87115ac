// What every request handler can reach through Hono's context.
import type { Sql } from "../db/client.ts";
import type { Config } from "./config.ts";

/** verified: the user's email address is verified (docs/api.md#accounts-and-sessions). */
export type SessionUser = { id: string; email: string; verified: boolean };

export type AppEnv = {
  Variables: {
    sql: Sql;
    config: Config;
    user: SessionUser | undefined;
  };
};
