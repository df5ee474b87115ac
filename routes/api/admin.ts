// Admin-only API (a verified ADMIN_EMAILS account, the check the admin pages use too): the webhook
// inbox and the replay of a failed event. Anyone else, signed in or not, gets 404, so the routes do
// not reveal that they exist.
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../utils/app_env.ts";
import { requireAdmin } from "../../middlewares/admin.ts";
import { ReplayParams } from "../../utils/schemas.ts";
import { queryParams } from "../../utils/validation.ts";

export const InboxQuery = z.object({
  status: z.enum(["failed", "processed", "ignored", "all"]).default("failed"),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

export const admin = new Hono<AppEnv>();

admin.use(requireAdmin);

admin.get("/webhooks", async (c) => {
  const query = queryParams(c, InboxQuery);
  const status = query.status === "all" ? null : query.status;
  const [row] = await c.var.sql<{ events: unknown }[]>`
    select billing.webhook_inbox(${status}, ${query.limit}) as events`;
  return c.json({ events: row.events });
});

admin.post("/webhooks/:provider/:eventId/replay", async (c) => {
  const parsed = ReplayParams.safeParse(c.req.param());
  if (!parsed.success) throw parsed.error;
  const [row] = await c.var.sql<{ result: string }[]>`
    select billing.replay_event(${parsed.data.provider}, ${parsed.data.eventId}) as result`;
  return c.json({ result: row.result });
});
