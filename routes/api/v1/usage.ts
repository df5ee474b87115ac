// /api/v1/usage/{usageId}/refund and /api/v1/usage/batch (docs/api.md#v1-routes). Each route:
// validate, one SQL call, JSON. A batch event that fails validation is "invalid" on its own: the
// envelope is checked as a whole, each event by itself, and only the valid events go to SQL.
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../../utils/app_env.ts";
import { HttpError } from "../../../utils/errors.ts";
import { requireApiKey } from "../../../middlewares/api_key.ts";
import { findNul } from "../../../utils/validation.ts";
import {
  AMOUNT_RULE,
  AmountFields,
  amountMembers,
  checkAmount,
  PositiveSafeInteger,
} from "./_amount.ts";
import {
  BEARER,
  errorAnswers,
  ExternalId,
  IdText,
  jsonAnswer,
  jsonRequest,
  v1App,
  z,
} from "./_openapi.ts";
import { type BatchResult, batchResult } from "./_usage_status.ts";
import { usageBatch } from "../../../utils/usage_batch.ts";

const UsageParams = z.object({
  usageId: IdText.openapi({ param: { name: "usageId", in: "path" }, example: "42" }),
});

const RefundBody = z.object({
  amount: PositiveSafeInteger.optional().openapi({
    description: "credits to give back; default all that is not yet refunded",
  }),
  idempotencyKey: z.string().min(1).max(255),
}).openapi("RefundBody");

const Refunded = z.object({
  refunded: z.number().int(),
  balance: z.number().int(),
}).openapi("Refunded");

export const BatchEvent = z.object({
  customer: ExternalId.openapi({ description: "the customer's externalId" }),
  ...AmountFields,
  idempotencyKey: z.string().min(1).max(255),
  description: z.string().max(500).optional(),
}).superRefine(checkAmount).openapi("UsageEvent", { description: AMOUNT_RULE });

const MAX_EVENTS = 1000;

// What the description shows: every event in full. The route's body names it by reference, so
// that the route does not validate it: the handler checks the envelope with BatchEnvelope and
// each event by itself, and one bad event does not refuse the batch.
const BatchBody = z.object({
  events: z.array(BatchEvent).min(1).max(MAX_EVENTS),
}).openapi("UsageBatchBody");

const BatchEnvelope = z.object({ events: z.array(z.unknown()).min(1).max(MAX_EVENTS) });

const BatchAnswer = z.object({
  results: z.array(z.object({
    idempotencyKey: z.string().nullable().openapi({
      description: "as sent; null when the event had none",
    }),
    status: z.enum(["ok", "insufficient_credits", "customer_not_found", "invalid"]),
    balance: z.number().int().optional(),
    usageId: z.number().int().optional(),
  })),
}).openapi("UsageBatchResults");

export const usage = v1App();
usage.use(requireApiKey);
usage.openAPIRegistry.register("UsageBatchBody", BatchBody);

const tag = ["usage"];

usage.openapi(
  createRoute({
    method: "post",
    path: "/{usageId}/refund",
    tags: tag,
    summary: "Give back credits of a usage to the grants it took them from",
    security: BEARER,
    request: { params: UsageParams, body: jsonRequest(RefundBody) },
    responses: {
      200: jsonAnswer(Refunded, "refunded (or this key's first answer again)"),
      ...errorAnswers(403, 404, 409, 413, 422),
    },
  }),
  async (c) => {
    const { usageId } = c.req.valid("param");
    const body = c.req.valid("json");
    const [row] = await c.var.sql<{ answer: z.infer<typeof Refunded> }[]>`
      select api.refund_usage(${Number(usageId)}, ${body.amount ?? null}, ${body.idempotencyKey})
             as answer`;
    return c.json(row.answer, 200);
  },
);

usage.openapi(
  createRoute({
    method: "post",
    path: "/batch",
    tags: tag,
    summary: "Up to 1,000 consumptions, each on its own",
    security: BEARER,
    request: {
      body: {
        required: true,
        content: {
          "application/json": { schema: { $ref: "#/components/schemas/UsageBatchBody" } },
        },
      },
    },
    responses: {
      200: jsonAnswer(BatchAnswer, "one result per event, in the order sent"),
      ...errorAnswers(403, 413),
    },
  }),
  async (c) => {
    const parsed = BatchEnvelope.safeParse(await jsonOf(c));
    if (!parsed.success) throw parsed.error;
    const checked = parsed.data.events.map((raw) => {
      const event = findNul(raw) === null ? BatchEvent.safeParse(raw) : null;
      return event?.success ? { valid: event.data } : { invalid: keyOf(raw) };
    });
    const valid = checked.flatMap((item) => "valid" in item && item.valid ? [item.valid] : []);
    const answered = valid.length === 0 ? [] : await usageBatch(
      c.var.sql,
      valid.map((event) => ({
        customer: event.customer,
        ...amountMembers(event),
        idempotencyKey: event.idempotencyKey,
        ...(event.description === undefined ? {} : { description: event.description }),
      })),
    );
    let next = 0;
    const results: BatchResult[] = checked.map((item) =>
      "valid" in item
        ? batchResult(answered[next++])
        : { idempotencyKey: item.invalid, status: "invalid" }
    );
    return c.json({ results }, 200);
  },
);

/** The body as JSON; a NUL inside an event makes that event invalid, not the batch. */
async function jsonOf(c: Context<AppEnv>): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new HttpError(400, "invalid_json", "the request body is not valid JSON");
  }
}

/** The idempotencyKey of an event that failed validation, when it has a usable one. */
function keyOf(raw: unknown): string | null {
  if (typeof raw !== "object" || raw === null) return null;
  const key = (raw as { idempotencyKey?: unknown }).idempotencyKey;
  return typeof key === "string" && findNul(key) === null ? key : null;
}
