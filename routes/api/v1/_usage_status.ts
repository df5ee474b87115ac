// The one place where api.usage_batch's statuses for an event (sql/api_spending.sql,
// utils/usage_batch.ts) become answers: HTTP for the single consume route, the public statuses
// for the batch route.
import { HttpError } from "../../../utils/errors.ts";
import type { UsageResult } from "../../../utils/usage_batch.ts";

/** The statuses of POST /api/v1/usage/batch. */
export type BatchStatus = "ok" | "insufficient_credits" | "customer_not_found" | "invalid";

export type BatchResult = {
  idempotencyKey: string | null;
  status: BatchStatus;
  balance?: number;
  usageId?: number;
};

/** POST .../consume: 200 {balance, usageId}, or the HttpError of its status. */
export function consumeAnswer(result: UsageResult): { balance: number; usageId: number } {
  switch (result.status) {
    case "ok":
      if (result.balance === undefined || result.usageId === undefined) {
        throw new Error("api.usage_batch answered ok without balance and usageId");
      }
      return { balance: result.balance, usageId: result.usageId };
    case "insufficient_credits":
      throw new HttpError(402, "insufficient_credits", "the balance is short; nothing was spent");
    case "customer_not_found":
      throw new HttpError(404, "customer_not_found", "no customer has this externalId");
    case "unknown_feature":
      throw new HttpError(400, "unknown_feature", "no feature of plans.json has this id");
    case "idempotency_key_reused":
      throw new HttpError(
        409,
        "idempotency_key_reused",
        "this idempotencyKey was used for another consumption",
      );
    case "invalid":
      throw new HttpError(400, "invalid_request", "the consumption was refused as invalid");
  }
}

/** One result of the batch route: what the batch does not tell apart is "invalid". */
export function batchResult(result: UsageResult): BatchResult {
  const status: BatchStatus =
    result.status === "unknown_feature" || result.status === "idempotency_key_reused"
      ? "invalid"
      : result.status;
  return {
    idempotencyKey: result.idempotencyKey,
    status,
    ...(result.balance !== undefined ? { balance: result.balance } : {}),
    ...(result.usageId !== undefined ? { usageId: result.usageId } : {}),
  };
}
