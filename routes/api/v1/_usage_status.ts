// What api.usage_batch answers for one event (sql: the lead's spending functions), and the one
// place where its internal statuses become answers: HTTP for the single consume route, the public
// statuses for the batch route.
import { HttpError } from "../../../utils/errors.ts";

export type InternalUsageStatus =
  | "ok"
  | "insufficient_credits"
  | "customer_not_found"
  | "invalid"
  | "unknown_feature"
  | "idempotency_key_reused";

/** One element of api.usage_batch's answer, in the order of the events sent. */
export type UsageEventResult = {
  idempotencyKey: string;
  status: InternalUsageStatus;
  balance?: number;
  usageId?: number;
};

/** The statuses of POST /api/v1/usage/batch. */
export type BatchStatus = "ok" | "insufficient_credits" | "customer_not_found" | "invalid";

export type BatchResult = {
  idempotencyKey: string | null;
  status: BatchStatus;
  balance?: number;
  usageId?: number;
};

/** POST .../consume: 200 {balance, usageId}, or the HttpError of its status. */
export function consumeAnswer(result: UsageEventResult): { balance: number; usageId: number } {
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
export function batchResult(result: UsageEventResult): BatchResult {
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
