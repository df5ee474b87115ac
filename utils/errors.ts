// Errors as typed values, and the one place where they become HTTP responses.
import { z } from "zod";
import { isTransient, sqlState } from "../db/client.ts";
import { log } from "./log.ts";

export type ErrorCode =
  | "invalid_request"
  | "invalid_json"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "email_taken"
  | "customer_not_found"
  | "unknown_feature"
  | "source_key_taken"
  | "reservation_closed"
  | "exceeds_reservation"
  | "exceeds_usage"
  | "insufficient_credits"
  | "idempotency_key_reused"
  | "too_many_requests"
  | "payload_too_large"
  | "request_timeout"
  | "unavailable"
  | "internal";

export class HttpError extends Error {
  constructor(
    readonly status: 400 | 401 | 402 | 403 | 404 | 408 | 409 | 413 | 422 | 429 | 500 | 503,
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export type ErrorBody = { error: ErrorCode; message: string };

function describeZodError(error: z.ZodError): string {
  const issue = error.issues[0];
  const field = issue.path.join(".");
  return field ? `${field}: ${issue.message}` : issue.message;
}

/**
 * Maps anything thrown by a route to an HTTP error. Unknown errors are logged (with the request id
 * when the caller has one), not shown.
 */
export function toHttpError(error: unknown, requestId?: string): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof z.ZodError) {
    return new HttpError(400, "invalid_request", describeZodError(error));
  }
  const state = sqlState(error);
  const message = error instanceof Error ? error.message : String(error);
  switch (state) {
    case "CR001":
      return new HttpError(402, "insufficient_credits", message);
    case "CR002":
      return new HttpError(409, "idempotency_key_reused", message);
    // The server-to-server API's own refusals (docs/api.md#v1-errors), raised by sql/api_*.sql and
    // the credits functions they call.
    case "CU001":
      return new HttpError(404, "customer_not_found", message);
    case "CU002":
      return new HttpError(409, "email_taken", message);
    case "CU003":
      return new HttpError(409, "source_key_taken", message);
    case "CR003":
      return new HttpError(422, "exceeds_reservation", message);
    case "CR004":
      return new HttpError(409, "reservation_closed", message);
    case "CR005":
      return new HttpError(422, "exceeds_usage", message);
    case "CR006":
      return new HttpError(400, "unknown_feature", message);
    case "CR007":
      return new HttpError(404, "not_found", message);
    case "AC001": // app.signup_check_limit: the DETAIL is the Retry-After in seconds.
      return new HttpError(429, "too_many_requests", message, {
        "Retry-After": (error as { detail?: string }).detail ?? "3600",
      });
    case "22023":
      return new HttpError(400, "invalid_request", message);
    case "23503":
      return new HttpError(404, "not_found", message);
    case "23505":
      return new HttpError(409, "conflict", message);
  }
  if (isTransient(error)) {
    return new HttpError(503, "unavailable", "the database is unavailable; try again shortly", {
      "Retry-After": "5",
    });
  }
  log("error", "unexpected error", { requestId, error });
  return new HttpError(500, "internal", "internal error");
}

/**
 * The JSON error body. A 500 names the request id in its message (the contract's body has only
 * "error" and "message"), so that a report of it can be found in the logs; a 503 says what is
 * unavailable already.
 */
export function errorBody(error: HttpError, requestId?: string): ErrorBody {
  const message = error.status === 500 && requestId
    ? `${error.message} (request ${requestId})`
    : error.message;
  return { error: error.code, message };
}

/**
 * An "unhandledrejection" listener for the server process. postgres.js on Deno can leave one of
 * its internal promises rejected when PostgreSQL drops a pooled connection (a restart,
 * pg_terminate_backend). The pool reconnects by itself and the request that was using the
 * connection has already been answered 503, so such a fault must not end the process; any other
 * unhandled rejection still does.
 */
export function survivePoolFault(event: PromiseRejectionEvent): void {
  if (!isTransient(event.reason)) return;
  event.preventDefault();
  log("warn", "database connection lost; reconnecting", {
    sqlState: sqlState(event.reason) ?? "network",
  });
}
