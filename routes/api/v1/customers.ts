// /api/v1/customers/{externalId}/... (docs/api.md#v1-routes): the app's customers, named by its
// own ids; what the signed-in user sees of their credits, and spending, holding and granting for
// any customer. Each route: validate, one SQL call (sql/api_*.sql), JSON.
import { createRoute } from "@hono/zod-openapi";
import type { Sql } from "../../../db/client.ts";
import { requireApiKey } from "../../../middlewares/api_key.ts";
import { portalUrl, startCheckout } from "../../../providers/checkout.ts";
import { CheckoutBody, Email, TransactionsQuery } from "../../../utils/schemas.ts";
import {
  AMOUNT_RULE,
  amountArguments,
  AmountFields,
  amountMembers,
  checkAmount,
  PositiveSafeInteger,
} from "./_amount.ts";
import {
  BEARER,
  CustomerParams,
  errorAnswers,
  jsonAnswer,
  jsonRequest,
  v1App,
  z,
} from "./_openapi.ts";
import { consumeAnswer } from "./_usage_status.ts";
import { consumeCoalesced } from "../../../utils/usage_batch.ts";

const Plan = z.object({
  id: z.string(),
  kind: z.string(),
  status: z.string().nullable(),
  renewsAt: z.string().nullable(),
}).nullable();

export const Customer = z.object({
  id: z.string().openapi({ description: "Tally's user id (uuid)" }),
  externalId: z.string(),
  email: z.string().nullable(),
  plan: Plan,
  balance: z.number().int().openapi({ description: "spendable credits, held ones excluded" }),
  reserved: z.number().int().openapi({ description: "credits held by open reservations" }),
}).openapi("Customer");

const PutCustomerBody = z.object({
  email: Email.optional(),
  name: z.string().trim().max(200).optional(),
}).openapi("PutCustomerBody");

const Credits = z.object({
  balance: z.number().int(),
  expiringSoon: z.object({ amount: z.number().int(), before: z.string() }),
  grants: z.array(z.object({
    id: z.number().int(),
    kind: z.string(),
    amount: z.number().int(),
    remaining: z.number().int(),
    expiresAt: z.string().nullable(),
    createdAt: z.string(),
  })),
}).openapi("Credits");

const Transactions = z.object({
  items: z.array(z.object({
    id: z.number().int(),
    kind: z.string(),
    amount: z.number().int(),
    balanceAfter: z.number().int(),
    description: z.string().nullable(),
    createdAt: z.string(),
  })),
  nextCursor: z.string().nullable(),
}).openapi("Transactions");

const BalanceQuery = z.object({
  at: z.iso.datetime({ offset: true }).optional().openapi({
    description: "ISO 8601 time; default now",
    example: "2026-11-01T00:00:00Z",
  }),
});

const BalanceAt = z.object({
  balance: z.number().int(),
  reserved: z.number().int(),
  at: z.string(),
}).openapi("BalanceAt");

const Url = z.object({ url: z.string() }).openapi("Url");

const IdempotencyKey = z.string().min(1).max(255).openapi({ example: "req_7f3a" });
const Description = z.string().max(500).optional();

export const ConsumeBody = z.object({
  ...AmountFields,
  idempotencyKey: IdempotencyKey,
  description: Description,
}).superRefine(checkAmount).openapi("ConsumeBody", { description: AMOUNT_RULE });

const Consumed = z.object({
  balance: z.number().int(),
  usageId: z.number().int(),
}).openapi("Consumed");

const ReserveBody = z.object({
  ...AmountFields,
  idempotencyKey: IdempotencyKey,
  ttlSeconds: z.number().int().min(1).max(86_400).optional().openapi({
    description: "how long the hold lasts; default 600",
  }),
  description: Description,
}).superRefine(checkAmount).openapi("ReserveBody", { description: AMOUNT_RULE });

export const Reservation = z.object({
  id: z.number().int(),
  amount: z.number().int(),
  expiresAt: z.string(),
  balance: z.number().int().openapi({ description: "held credits excluded" }),
  reserved: z.number().int(),
}).openapi("Reservation");

const GrantBody = z.object({
  amount: PositiveSafeInteger,
  sourceKey: z.string().min(1).max(255).openapi({
    description: "idempotency key of the grant, unique across customers",
  }),
  kind: z.enum(["bonus", "adjustment"]).optional(),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  description: Description,
}).openapi("GrantBody");

const Granted = z.object({ id: z.number().int(), balance: z.number().int() }).openapi("Granted");

export const customers = v1App();
customers.use(requireApiKey);

const tag = ["customers"];

customers.openapi(
  createRoute({
    method: "put",
    path: "/{externalId}",
    tags: tag,
    summary: "Create or update a customer",
    security: BEARER,
    request: { params: CustomerParams, body: jsonRequest(PutCustomerBody) },
    responses: {
      200: jsonAnswer(Customer, "updated (or linked an existing user by email)"),
      201: jsonAnswer(Customer, "created, with the sign-up grants"),
      ...errorAnswers(403, 409, 413),
    },
  }),
  async (c) => {
    const { externalId } = c.req.valid("param");
    const body = c.req.valid("json");
    const [row] = await c.var.sql<
      { answer: { created: boolean; customer: z.infer<typeof Customer> } }[]
    >`select api.put_customer(${externalId}, ${body.email ?? null}, ${
      body.name ?? null
    }) as answer`;
    return row.answer.created ? c.json(row.answer.customer, 201) : c.json(row.answer.customer, 200);
  },
);

customers.openapi(
  createRoute({
    method: "get",
    path: "/{externalId}",
    tags: tag,
    summary: "A customer",
    security: BEARER,
    request: { params: CustomerParams },
    responses: { 200: jsonAnswer(Customer, "the customer"), ...errorAnswers(404) },
  }),
  async (c) => {
    const { externalId } = c.req.valid("param");
    const [row] = await c.var.sql<{ customer: z.infer<typeof Customer> }[]>`
      select api.customer(${externalId}) as customer`;
    return c.json(row.customer, 200);
  },
);

customers.openapi(
  createRoute({
    method: "get",
    path: "/{externalId}/credits",
    tags: tag,
    summary: "Balance and unspent grants, in spending order",
    security: BEARER,
    request: { params: CustomerParams },
    responses: { 200: jsonAnswer(Credits, "as GET /api/me/credits"), ...errorAnswers(404) },
  }),
  async (c) => {
    const { externalId } = c.req.valid("param");
    const [row] = await c.var.sql<{ credits: z.infer<typeof Credits> }[]>`
      select api.customer_credits(${externalId}) as credits`;
    return c.json(row.credits, 200);
  },
);

customers.openapi(
  createRoute({
    method: "get",
    path: "/{externalId}/transactions",
    tags: tag,
    summary: "The ledger, newest first",
    security: BEARER,
    request: { params: CustomerParams, query: TransactionsQuery },
    responses: {
      200: jsonAnswer(Transactions, "as GET /api/me/transactions"),
      ...errorAnswers(404),
    },
  }),
  async (c) => {
    const { externalId } = c.req.valid("param");
    const query = c.req.valid("query");
    const [row] = await c.var.sql<{ page: z.infer<typeof Transactions> }[]>`
      select api.customer_transactions(${externalId}, ${query.limit}, ${query.cursor ?? null},
                                       ${query.kind ?? null}) as page`;
    return c.json(row.page, 200);
  },
);

customers.openapi(
  createRoute({
    method: "get",
    path: "/{externalId}/balance",
    tags: tag,
    summary: "The balance at a moment, past or future",
    security: BEARER,
    request: { params: CustomerParams, query: BalanceQuery },
    responses: { 200: jsonAnswer(BalanceAt, "the balance at `at`"), ...errorAnswers(404) },
  }),
  async (c) => {
    const { externalId } = c.req.valid("param");
    const { at } = c.req.valid("query");
    const [row] = await c.var.sql<{ balance: z.infer<typeof BalanceAt> }[]>`
      select api.balance_at(${externalId}, ${at ?? null}) as balance`;
    return c.json(row.balance, 200);
  },
);

customers.openapi(
  createRoute({
    method: "post",
    path: "/{externalId}/checkout",
    tags: tag,
    summary: "A hosted checkout page for the customer",
    security: BEARER,
    request: { params: CustomerParams, body: jsonRequest(CheckoutBody) },
    responses: {
      200: jsonAnswer(Url, "the provider's checkout page"),
      ...errorAnswers(403, 404, 413),
    },
  }),
  async (c) => {
    const { externalId } = c.req.valid("param");
    const { priceId } = c.req.valid("json");
    const userId = await customerUser(c.var.sql, externalId);
    return c.json({ url: await startCheckout(c.var.sql, c.var.config, userId, priceId) }, 200);
  },
);

customers.openapi(
  createRoute({
    method: "post",
    path: "/{externalId}/portal",
    tags: tag,
    summary: "The provider's customer portal for the customer",
    security: BEARER,
    request: { params: CustomerParams },
    responses: {
      200: jsonAnswer(Url, "the provider's portal page"),
      ...errorAnswers(403, 404),
    },
  }),
  async (c) => {
    const { externalId } = c.req.valid("param");
    const userId = await customerUser(c.var.sql, externalId);
    return c.json({ url: await portalUrl(c.var.sql, c.var.config, userId) }, 200);
  },
);

customers.openapi(
  createRoute({
    method: "post",
    path: "/{externalId}/grants",
    tags: tag,
    summary: "Grant credits (bonus or adjustment)",
    security: BEARER,
    request: { params: CustomerParams, body: jsonRequest(GrantBody) },
    responses: {
      200: jsonAnswer(Granted, "this sourceKey was granted before: the same grant"),
      201: jsonAnswer(Granted, "granted"),
      ...errorAnswers(403, 404, 409, 413),
    },
  }),
  async (c) => {
    const { externalId } = c.req.valid("param");
    const body = c.req.valid("json");
    const [row] = await c.var.sql<{ answer: { created: boolean; id: number; balance: number } }[]>`
      select api.grant(${externalId}, ${body.amount}, ${body.sourceKey}, ${body.kind ?? null},
                       ${body.expiresAt ?? null}, ${body.description ?? null}) as answer`;
    const granted = { id: row.answer.id, balance: row.answer.balance };
    return row.answer.created ? c.json(granted, 201) : c.json(granted, 200);
  },
);

customers.openapi(
  createRoute({
    method: "post",
    path: "/{externalId}/consume",
    tags: tag,
    summary: "Spend credits once per idempotencyKey",
    security: BEARER,
    request: { params: CustomerParams, body: jsonRequest(ConsumeBody) },
    responses: {
      200: jsonAnswer(Consumed, "spent (or this key's first answer again)"),
      ...errorAnswers(402, 403, 404, 409, 413),
    },
  }),
  async (c) => {
    const { externalId } = c.req.valid("param");
    const body = c.req.valid("json");
    // Coalesced with the consumptions arriving meanwhile into one api.usage_batch call.
    const result = await consumeCoalesced(c.var.sql, {
      customer: externalId,
      ...amountMembers(body),
      idempotencyKey: body.idempotencyKey,
      ...(body.description === undefined ? {} : { description: body.description }),
    });
    return c.json(consumeAnswer(result), 200);
  },
);

customers.openapi(
  createRoute({
    method: "post",
    path: "/{externalId}/reservations",
    tags: tag,
    summary: "Hold credits until settled, released or expired",
    security: BEARER,
    request: { params: CustomerParams, body: jsonRequest(ReserveBody) },
    responses: {
      200: jsonAnswer(Reservation, "this idempotencyKey's reservation, made before"),
      201: jsonAnswer(Reservation, "held"),
      ...errorAnswers(402, 403, 404, 409, 413),
    },
  }),
  async (c) => {
    const { externalId } = c.req.valid("param");
    const body = c.req.valid("json");
    const { amount, feature, quantity } = amountArguments(body);
    const [row] = await c.var.sql<
      { answer: { created: boolean; reservation: z.infer<typeof Reservation> } }[]
    >`
      select api.reserve(${externalId}, ${amount}, ${feature}, ${quantity}, ${body.idempotencyKey},
                         ${body.ttlSeconds ?? 600}, ${body.description ?? null}) as answer`;
    return row.answer.created
      ? c.json(row.answer.reservation, 201)
      : c.json(row.answer.reservation, 200);
  },
);

/** The customer's user id for the web code paths; CU001 (404) when unknown. */
async function customerUser(sql: Sql, externalId: string): Promise<string> {
  const [row] = await sql<{ id: string }[]>`select api.customer_user(${externalId}) as id`;
  return row.id;
}
