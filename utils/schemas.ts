// The zod schemas that more than one route reads: an API route and the page that takes the same
// input validate it with the same schema, so the two can never accept different things.
import { z } from "zod";
import { LEDGER_KINDS, PROVIDERS } from "./kinds.ts";

// POST /api/auth/signup, /api/auth/login, the /signup and /login forms and PUT
// /api/v1/customers/{externalId}.
export const Email = z.string().trim().toLowerCase().pipe(z.email("not a valid email address"))
  .pipe(
    z.string().max(254),
  );
// Long enough for passphrases, short enough that hashing cannot be used to burn CPU.
const password = z.string().max(1024, "at most 1024 characters");

export const SignupBody = z.object({
  email: Email,
  password: password.min(8, "at least 8 characters"),
  name: z.string().trim().max(200).optional(),
});

export const LoginBody = z.object({ email: Email, password: password.min(1, "required") });

// POST /api/checkout and GET /checkout/start.
export const CheckoutBody = z.object({
  priceId: z.string().trim().min(1).max(200),
});

// GET /api/me/transactions and the dashboard's history filter.
export const TransactionsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().regex(/^[0-9]{1,18}$/, "not a cursor from this API").optional(),
  kind: z.enum(LEDGER_KINDS).optional(),
});

// POST /api/admin/webhooks/:provider/:eventId/replay and the admin page's replay button.
export const ReplayParams = z.object({
  provider: z.enum(PROVIDERS),
  eventId: z.string().min(1).max(255),
});
