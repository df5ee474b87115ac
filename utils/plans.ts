// The plans file (docs/plans-file.md): validated with zod at start-up, then loaded into the
// catalogue tables by one SQL call. SQL reads credits from those tables, never from requests.
import { z } from "zod";
import type { Sql } from "../db/client.ts";
import { PROVIDERS } from "./kinds.ts";

const id = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, "lowercase letters, digits, - and _");
const credits = z.number().int().nonnegative();
const days = z.number().int().positive();
const amount = z.number().int().nonnegative();
const provider = z.enum(PROVIDERS);
const priceId = z.string().min(1);

const PlanPrice = z.object({
  provider,
  priceId,
  interval: z.enum(["month", "year", "once"]),
  amount,
}).strict();

const PackagePrice = z.object({ provider, priceId, amount }).strict();

const Plan = z.object({
  id,
  name: z.string().min(1),
  kind: z.enum(["free", "subscription", "lifetime"]),
  monthlyCredits: credits,
  creditsExpireInDays: days.optional(),
  trialCredits: credits.optional(),
  prices: z.array(PlanPrice).optional(),
}).strict().superRefine((plan, ctx) => {
  const prices = plan.prices ?? [];
  prices.forEach((price, index) => {
    const fits = plan.kind === "subscription"
      ? price.interval === "month" || price.interval === "year"
      : plan.kind === "lifetime"
      ? price.interval === "once"
      : false;
    if (!fits) {
      ctx.addIssue({
        code: "custom",
        path: ["prices", index, "interval"],
        message: plan.kind === "free"
          ? "a free plan has no prices"
          : `interval ${price.interval} does not fit a ${plan.kind} plan`,
      });
    }
  });
  if (plan.kind !== "free" && prices.length === 0) {
    ctx.addIssue({ code: "custom", path: ["prices"], message: `a ${plan.kind} plan needs prices` });
  }
});

const Package = z.object({
  id,
  name: z.string().min(1),
  credits: z.number().int().positive(),
  expiresInDays: days.optional(),
  prices: z.array(PackagePrice).min(1),
}).strict();

// What one use of a feature costs (credits.feature_cost); the API spends by feature id.
const Feature = z.object({
  id,
  name: z.string().min(1),
  credits: z.number().int().positive(),
}).strict();

const Gift = z.object({ credits, expiresInDays: days.optional() }).strict();

export const PlansFileSchema = z.object({
  currency: z.string().regex(/^[a-zA-Z]{3}$/, "a three-letter ISO currency code"),
  signupGift: Gift,
  dailySignin: Gift.optional(),
  plans: z.array(Plan).min(1),
  packages: z.array(Package).default([]),
  features: z.array(Feature).default([]),
  lowBalanceCredits: z.number().int().nonnegative().optional(),
}).strict().superRefine((file, ctx) => {
  const free = file.plans.filter((plan) => plan.kind === "free");
  if (free.length !== 1) {
    ctx.addIssue({
      code: "custom",
      path: ["plans"],
      message: `exactly one plan must have kind "free" (found ${free.length})`,
    });
  }
  const seenPlans = new Set<string>();
  file.plans.forEach((plan, index) => {
    if (seenPlans.has(plan.id)) {
      ctx.addIssue({
        code: "custom",
        path: ["plans", index, "id"],
        message: `duplicate id ${plan.id}`,
      });
    }
    seenPlans.add(plan.id);
  });
  const seenPackages = new Set<string>();
  file.packages.forEach((pack, index) => {
    if (seenPackages.has(pack.id)) {
      ctx.addIssue({
        code: "custom",
        path: ["packages", index, "id"],
        message: `duplicate id ${pack.id}`,
      });
    }
    seenPackages.add(pack.id);
  });
  const seenFeatures = new Set<string>();
  file.features.forEach((feature, index) => {
    if (seenFeatures.has(feature.id)) {
      ctx.addIssue({
        code: "custom",
        path: ["features", index, "id"],
        message: `duplicate id ${feature.id}`,
      });
    }
    seenFeatures.add(feature.id);
  });
  const seenPrices = new Set<string>();
  const checkPrice = (path: (string | number)[], price: { priceId: string }) => {
    if (seenPrices.has(price.priceId)) {
      ctx.addIssue({
        code: "custom",
        path,
        message: `price ID ${price.priceId} appears more than once in the file`,
      });
    }
    seenPrices.add(price.priceId);
  };
  file.plans.forEach((plan, p) =>
    (plan.prices ?? []).forEach((price, i) =>
      checkPrice(["plans", p, "prices", i, "priceId"], price)
    )
  );
  file.packages.forEach((pack, p) =>
    pack.prices.forEach((price, i) => checkPrice(["packages", p, "prices", i, "priceId"], price))
  );
});

export type PlansFile = z.infer<typeof PlansFileSchema>;

export class PlansFileError extends Error {}

/** Renders a zod path the way the file is written: plans[1].prices[0].priceId */
function fieldName(path: PropertyKey[]): string {
  return path.reduce<string>(
    (name, part) =>
      typeof part === "number"
        ? `${name}[${part}]`
        : name
        ? `${name}.${String(part)}`
        : String(part),
    "",
  ) || "(root)";
}

/** Reads and validates the plans file, or throws a PlansFileError naming the bad field. */
export async function readPlansFile(path: string): Promise<PlansFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new PlansFileError(`plans file ${path}: cannot read it (${(error as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PlansFileError(`plans file ${path}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = PlansFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PlansFileError(
      `plans file ${path}: field ${fieldName(issue.path)}: ${issue.message}`,
    );
  }
  return parsed.data;
}

/** Loads a validated plans file into the catalogue tables (billing.load_plans). */
export async function loadPlans(sql: Sql, plans: PlansFile): Promise<void> {
  await sql`select billing.load_plans(${sql.json(plans)}::jsonb)`;
}
