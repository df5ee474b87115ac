// Admin-only API (a verified ADMIN_EMAILS account, the check the admin pages use too): the webhook
// inbox and the replay of a failed event; the server-to-server API's keys. Anyone else, signed in or not, gets 404, so the routes do
// not reveal that they exist.
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../utils/app_env.ts";
import { requireAdmin } from "../../middlewares/admin.ts";
import { currentUser } from "../../middlewares/session.ts";
import { ApiKeyName, ApiKeyScopes, createApiKey } from "../../utils/api_keys.ts";
import { HttpError } from "../../utils/errors.ts";
import { ReplayParams } from "../../utils/schemas.ts";
import { jsonBody, queryParams } from "../../utils/validation.ts";

export const InboxQuery = z.object({
  status: z.enum(["failed", "processed", "ignored", "all"]).default("failed"),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

export const NewApiKey = z.strictObject({ name: ApiKeyName, scopes: ApiKeyScopes });
/** A key's id in the path: anything but a positive integer names no key (404). */
const ApiKeyId = z.string().regex(/^[1-9][0-9]{0,14}$/).transform(Number);

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

// The server-to-server API's keys (docs/api.md#keys). The key is in the POST's answer only.
admin.post("/api-keys", async (c) => {
  const request = await jsonBody(c, NewApiKey);
  const created = await createApiKey(c.var.sql, {
    name: request.name,
    scopes: request.scopes,
    createdBy: currentUser(c).id,
  });
  return c.json(created, 201);
});

admin.get("/api-keys", async (c) => {
  const [row] = await c.var.sql<{ items: unknown }[]>`select app.api_keys() as items`;
  return c.json({ items: row.items });
});

admin.delete("/api-keys/:id", async (c) => {
  const id = ApiKeyId.safeParse(c.req.param("id"));
  if (!id.success) throw new HttpError(404, "not_found", "no such API key");
  await c.var.sql`select app.revoke_api_key(${id.data})`;
  return c.body(null, 204);
});
