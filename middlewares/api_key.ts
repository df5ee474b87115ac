// TEMPORARY (branch v1http): a stand-in with the name of the keys helper's middleware so that the
// /api/v1 routes compile before it lands on main; it refuses every request. Deleted when main's
// middlewares/api_key.ts is merged.
import type { MiddlewareHandler } from "hono";
import { HttpError } from "../utils/errors.ts";

export const requireApiKey: MiddlewareHandler = async () => {
  await Promise.resolve();
  throw new HttpError(401, "unauthorized", "API keys are not built on this branch yet");
};
