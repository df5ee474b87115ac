// The amount of a spend (docs/api.md#v1-spending): either "amount": N, or "feature" with
// "quantity" (default 1), whose cost SQL computes from plans.json's features. Numbers are positive
// safe integers: 2^53 and above, fractions, strings, zero and negatives are refused with 400.
import { z } from "@hono/zod-openapi";

export const PositiveSafeInteger = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** The rule as the description states it on every body with an amount. */
export const AMOUNT_RULE = "Exactly one of `amount` and `feature` (with `quantity`, default 1); " +
  "both, neither or a number that is not a positive integer below 2^53 answer 400 " +
  "invalid_request, an unknown feature 400 unknown_feature.";

export const AmountFields = {
  amount: PositiveSafeInteger.optional().openapi({
    description: "Credits to spend; give this or feature, not both.",
    example: 25,
  }),
  feature: z.string().min(1).max(100).optional().openapi({
    description: "A feature id of plans.json; its credits times quantity are spent.",
    example: "chat_message",
  }),
  quantity: PositiveSafeInteger.optional().openapi({
    description: "How many of the feature (with feature only); default 1.",
    example: 1,
  }),
};

type AmountInput = { amount?: number; feature?: string; quantity?: number };

/** Exactly one of amount and feature; quantity only with feature. */
export function checkAmount(value: AmountInput, ctx: z.RefinementCtx): void {
  const hasAmount = value.amount !== undefined;
  const hasFeature = value.feature !== undefined;
  if (hasAmount === hasFeature) {
    ctx.addIssue({ code: "custom", message: "give either amount or feature, not both or neither" });
  } else if (hasAmount && value.quantity !== undefined) {
    ctx.addIssue({ code: "custom", path: ["quantity"], message: "quantity goes with feature" });
  }
}

/** The SQL arguments of a checked amount: exactly one of amount and feature is non-null. */
export function amountArguments(value: AmountInput): {
  amount: number | null;
  feature: string | null;
  quantity: number | null;
} {
  return value.feature === undefined
    ? { amount: value.amount ?? null, feature: null, quantity: null }
    : { amount: null, feature: value.feature, quantity: value.quantity ?? 1 };
}

/** The amount members of an api.usage_batch event: only those given (SQL reads their presence). */
export function amountMembers(value: AmountInput): AmountInput {
  return value.feature === undefined
    ? { amount: value.amount }
    : { feature: value.feature, quantity: value.quantity ?? 1 };
}
