// The signed-in user's account and credits (docs/api.md#routes). Each route: validate, one SQL
// call, JSON.
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../utils/app_env.ts";
import { currentUser, requireUser } from "../../middlewares/session.ts";
import { TransactionsQuery } from "../../utils/schemas.ts";
import { jsonBody, queryParams } from "../../utils/validation.ts";

export const ConsumeBody = z.object({
  amount: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  idempotencyKey: z.string().min(1).max(200),
  description: z.string().max(500).optional(),
});

export const me = new Hono<AppEnv>();
me.use(requireUser);

me.get("/", async (c) => {
  const [row] = await c.var.sql<{ me: unknown }[]>`select app.me(${currentUser(c).id}) as me`;
  return c.json(row.me);
});

me.get("/credits", async (c) => {
  const [row] = await c.var.sql<{ summary: unknown }[]>`
    select credits.summary(${currentUser(c).id}) as summary`;
  return c.json(row.summary);
});

me.get("/transactions", async (c) => {
  const query = queryParams(c, TransactionsQuery);
  const [row] = await c.var.sql<{ page: unknown }[]>`
    select credits.transactions(${currentUser(c).id}, ${query.limit}, ${query.cursor ?? null},
                                ${query.kind ?? null}) as page`;
  return c.json(row.page);
});

me.post("/credits/consume", async (c) => {
  const body = await jsonBody(c, ConsumeBody);
  const [row] = await c.var.sql<{ balance: number }[]>`
    select credits.consume(${currentUser(c).id}, ${body.amount}, ${body.idempotencyKey},
                           ${body.description ?? null}) as balance`;
  return c.json({ balance: row.balance });
});

me.post("/daily-signin", async (c) => {
  const [row] = await c.var.sql<{ granted: number; balance: number }[]>`
    select granted, balance from credits.daily_signin(${currentUser(c).id})`;
  return c.json({ granted: row.granted, balance: row.balance });
});
