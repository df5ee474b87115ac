// What every /api/v1 resource file shares (not a route): the sub-app whose validation failures
// answer the repo's error format, the error schema and the error answers of the description, the
// bearer security, and the path parameters.
import { type Hook, OpenAPIHono, z } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { Context } from "hono";
import type { AppEnv } from "../../../utils/app_env.ts";
import { errorBody, HttpError, toHttpError } from "../../../utils/errors.ts";
import { findNul, nulRefused } from "../../../utils/validation.ts";

export { z };

/**
 * Every refused input answers 400 {"error": "invalid_request", "message"} (docs/api.md#errors), as
 * the rest of the API does; a NUL character in the body or the query is refused before the
 * schema is read, as utils/validation.ts refuses it for the other routes.
 */
// deno-lint-ignore no-explicit-any -- Hook's own type for a hook shared by every route.
const answerRefusedInput: Hook<any, AppEnv, any, any> = (result, c) => {
  if (result.target === "json" || result.target === "query") {
    // The hook is given the raw input whether or not it passed (its type says so only on success).
    const nul = findNul((result as { data?: unknown }).data);
    if (nul !== null) return c.json(errorBody(nulRefused(nul)), 400);
  }
  if (!result.success) return c.json(errorBody(toHttpError(result.error)), 400);
};

/**
 * Hono's validators throw HTTPException for a body that is not JSON or not declared as JSON;
 * those become the API's own error codes, everything else goes through utils/errors.ts.
 */
export function v1ErrorAnswer(error: Error, c: Context<AppEnv>): Response {
  let http: HttpError;
  if (error instanceof HTTPException && error.status === 415) {
    http = new HttpError(400, "invalid_request", "the body must be JSON (application/json)");
  } else if (error instanceof HTTPException && error.status === 400) {
    http = new HttpError(400, "invalid_json", "the request body is not valid JSON");
  } else {
    http = toHttpError(error, c.var.requestId);
  }
  for (const [name, value] of Object.entries(http.headers)) c.header(name, value);
  return c.json(errorBody(http, c.var.requestId), http.status);
}

/** A sub-app of /api/v1: OpenAPI routes, refused input and errors in the API's format. */
export function v1App(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: answerRefusedInput });
  app.onError(v1ErrorAnswer);
  return app;
}

export const ErrorSchema = z.object({
  error: z.string().openapi({ example: "invalid_request" }),
  message: z.string().openapi({ example: "amount: Too small: expected number to be >0" }),
}).openapi("Error");

const ERROR_DESCRIPTIONS = {
  400: "invalid_request, invalid_json or unknown_feature: the input was refused, nothing changed",
  401: "unauthorized: the bearer key is missing, unknown or revoked",
  402: "insufficient_credits: the balance is short, nothing changed",
  403: "forbidden: a read key on anything but GET",
  404: "customer_not_found, or not_found for an unknown reservation, usage or price",
  409: "a conflict (email_taken, source_key_taken, reservation_closed, idempotency_key_reused)",
  408: "request_timeout: the body did not arrive in time",
  413: "payload_too_large: a body over 1 MB",
  422: "exceeds_reservation or exceeds_usage",
  500: "internal: an unexpected fault (logged), or the payment provider refused",
  503: "unavailable: the database is unreachable; retry (Retry-After)",
} as const;

export type ErrorStatus = keyof typeof ERROR_DESCRIPTIONS;

/**
 * Error answers of a route, each with the shared error schema; 400, 401, 500 and 503 are always
 * there, and a route with a body (given 413) can also time out (408).
 */
export function errorAnswers<S extends ErrorStatus>(...statuses: S[]) {
  const withBody: ErrorStatus[] = statuses.includes(413 as S) ? [408] : [];
  const all = [...new Set<ErrorStatus>([400, 401, ...statuses, ...withBody, 500, 503])].sort();
  return Object.fromEntries(all.map((status) => [status, {
    description: ERROR_DESCRIPTIONS[status],
    content: { "application/json": { schema: ErrorSchema } },
  }])) as Record<S | 400 | 401 | 503, ErrorAnswer>;
}

type ErrorAnswer = {
  description: string;
  content: { "application/json": { schema: typeof ErrorSchema } };
};

/** A JSON answer of the description. */
export function jsonAnswer<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** A JSON request body of the description; required, so a missing one is refused. */
export function jsonRequest<T extends z.ZodType>(schema: T) {
  return { required: true, content: { "application/json": { schema } } };
}

export const BEARER = [{ bearerAuth: [] }];

/** Registers the bearer scheme that BEARER names, on the app whose document names it. */
export function registerBearer(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description: "An API key (tally_sk_...) made by an admin; a read key may only GET.",
  });
}

/** The app's own name for a customer: 1 to 255 of letters, digits and _ - . : @. */
export const ExternalId = z.string().regex(
  /^[A-Za-z0-9_\-.:@]{1,255}$/,
  "1 to 255 characters of letters, digits and _ - . : @",
).openapi({ param: { name: "externalId", in: "path" }, example: "user_42" });

export const CustomerParams = z.object({ externalId: ExternalId });

/** A bigint id in a path: decimal digits, below 2^53. */
export const IdText = z.string().regex(/^[1-9][0-9]{0,15}$/, "a positive integer id").refine(
  (value) => Number(value) <= Number.MAX_SAFE_INTEGER,
  "a positive integer id",
);
