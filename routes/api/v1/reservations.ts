// /api/v1/reservations/{id}/settle and /release (docs/api.md#v1-routes): ending a hold made by
// POST /api/v1/customers/{externalId}/reservations. Each route: validate, one SQL call, JSON.
import { createRoute } from "@hono/zod-openapi";
import { requireApiKey } from "../../../middlewares/api_key.ts";
import { BEARER, errorAnswers, IdText, jsonAnswer, jsonRequest, v1App, z } from "./_openapi.ts";

const ReservationParams = z.object({
  id: IdText.openapi({ param: { name: "id", in: "path" }, example: "42" }),
});

const SettleBody = z.object({
  amount: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).openapi({
    description: "credits actually spent, 0 to the held amount; the rest is given back",
  }),
  description: z.string().max(500).optional(),
}).openapi("SettleBody");

const Settled = z.object({
  balance: z.number().int(),
  usageId: z.number().int().nullable(),
  settled: z.number().int(),
}).openapi("Settled");

const Released = z.object({ balance: z.number().int() }).openapi("Released");

export const reservations = v1App();
reservations.use(requireApiKey);

const tag = ["reservations"];

reservations.openapi(
  createRoute({
    method: "post",
    path: "/{id}/settle",
    tags: tag,
    summary: "Spend part or all of a hold and give back the rest",
    security: BEARER,
    request: { params: ReservationParams, body: jsonRequest(SettleBody) },
    responses: {
      200: jsonAnswer(Settled, "settled (or settled before with this amount)"),
      ...errorAnswers(403, 404, 409, 413, 422),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const [row] = await c.var.sql<{ answer: z.infer<typeof Settled> }[]>`
      select api.settle(${Number(id)}, ${body.amount}, ${body.description ?? null}) as answer`;
    return c.json(row.answer, 200);
  },
);

reservations.openapi(
  createRoute({
    method: "post",
    path: "/{id}/release",
    tags: tag,
    summary: "Give a hold back (repeatable)",
    security: BEARER,
    request: { params: ReservationParams },
    responses: {
      200: jsonAnswer(Released, "released"),
      ...errorAnswers(403, 404, 409),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const [row] = await c.var.sql<{ answer: z.infer<typeof Released> }[]>`
      select api.release(${Number(id)}) as answer`;
    return c.json(row.answer, 200);
  },
);
