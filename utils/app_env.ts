// What every request handler can reach through Hono's context.
import type { Sql } from "../db/client.ts";
import type { Config } from "./config.ts";
import type { SessionUser } from "../middlewares/session.ts";

export type AppEnv = {
  Variables: {
    sql: Sql;
    config: Config;
    user: SessionUser | undefined;
  };
};
