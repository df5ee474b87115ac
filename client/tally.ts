// A small typed client of Tally's /api/v1 (docs/api.md#v1-routes) over openapi-fetch, with the
// types of client/schema.ts. The POSTs that carry an idempotency key (consume, reservations,
// grants by sourceKey, refunds, batches), and settle and release (idempotent by rule), are
// retried on a network error, 503 and 429, honouring Retry-After, with the same key and the same
// body, so a retry can never spend twice: Tally answers a repeated key with its first answer.
// consume and reserve make a key when given none.
// Every call answers openapi-fetch's {data, error, response}.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.ts";

export type { components, paths };
type Schemas = components["schemas"];

export type TallyClientOptions = {
  /** Tally's URL, e.g. https://tally.example.com (the paths start with /api/v1). */
  baseUrl: string;
  /** An API key (tally_sk_...); a read key may only GET. */
  apiKey: string;
  /** Retries after the first attempt of an idempotent POST; default 3. */
  retries?: number;
  /** First backoff in ms, doubled on each retry; default 250. */
  backoffMs?: number;
  /** No wait (backoff or Retry-After) is longer than this; default 10 s. */
  maxBackoffMs?: number;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: (request: Request) => Promise<Response>;
};

/** An amount: either credits, or a feature of plans.json with a quantity (default 1). */
export type Amount =
  | { amount: number; feature?: never; quantity?: never }
  | { feature: string; quantity?: number; amount?: never };

/** A body whose idempotencyKey the client makes when it is not given. */
type WithOptionalKey<T extends { idempotencyKey: string }> =
  & Omit<T, "idempotencyKey" | "amount" | "feature" | "quantity">
  & Amount
  & { idempotencyKey?: string };

export type ConsumeInput = WithOptionalKey<Schemas["ConsumeBody"]>;
export type ReserveInput = WithOptionalKey<Schemas["ReserveBody"]>;

const RETRIED_STATUSES = new Set([429, 503]);

/** The wait before retry number `attempt` (0 first): Retry-After when given, else backoff. */
export function retryDelay(
  attempt: number,
  retryAfter: string | null,
  backoffMs: number,
  maxBackoffMs: number,
): number {
  let wait = backoffMs * 2 ** attempt;
  if (retryAfter !== null) {
    const seconds = Number(retryAfter);
    const at = Date.parse(retryAfter);
    if (Number.isFinite(seconds)) wait = seconds * 1000;
    else if (Number.isFinite(at)) wait = at - Date.now();
  }
  return Math.min(Math.max(wait, 0), maxBackoffMs);
}

/** A fetch that sends the same request again on a network error, 503 or 429. */
function retrying(
  send: (request: Request) => Promise<Response>,
  options: { retries: number; backoffMs: number; maxBackoffMs: number },
): (request: Request) => Promise<Response> {
  return async (request) => {
    for (let attempt = 0;; attempt++) {
      const last = attempt >= options.retries;
      let response: Response;
      try {
        // Each attempt sends a copy: a body can be read only once.
        response = await send(request.clone());
      } catch (error) {
        // fetch rejects with a TypeError when the connection fails; an abort is the caller's.
        if (last || !(error instanceof TypeError)) throw error;
        await sleep(retryDelay(attempt, null, options.backoffMs, options.maxBackoffMs));
        continue;
      }
      if (last || !RETRIED_STATUSES.has(response.status)) return response;
      const wait = retryDelay(
        attempt,
        response.headers.get("retry-after"),
        options.backoffMs,
        options.maxBackoffMs,
      );
      await response.body?.cancel();
      await sleep(wait);
    }
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function createTallyClient(options: TallyClientOptions) {
  const send = options.fetch ?? ((request: Request) => fetch(request));
  const api = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    headers: { Authorization: `Bearer ${options.apiKey}` },
    fetch: send,
  });
  const retried = {
    fetch: retrying(send, {
      retries: options.retries ?? 3,
      backoffMs: options.backoffMs ?? 250,
      maxBackoffMs: options.maxBackoffMs ?? 10_000,
    }),
  };
  const customer = (externalId: string) => ({ path: { externalId } });

  return {
    /** The openapi-fetch client itself, for anything the methods below do not cover. */
    api,
    putCustomer: (externalId: string, body: Schemas["PutCustomerBody"] = {}) =>
      api.PUT("/api/v1/customers/{externalId}", { params: customer(externalId), body }),
    getCustomer: (externalId: string) =>
      api.GET("/api/v1/customers/{externalId}", { params: customer(externalId) }),
    credits: (externalId: string) =>
      api.GET("/api/v1/customers/{externalId}/credits", { params: customer(externalId) }),
    transactions: (
      externalId: string,
      query: paths["/api/v1/customers/{externalId}/transactions"]["get"]["parameters"]["query"] =
        {},
    ) =>
      api.GET("/api/v1/customers/{externalId}/transactions", {
        params: { ...customer(externalId), query },
      }),
    balance: (externalId: string, at?: Date | string) =>
      api.GET("/api/v1/customers/{externalId}/balance", {
        params: {
          ...customer(externalId),
          query: at === undefined ? {} : { at: at instanceof Date ? at.toISOString() : at },
        },
      }),
    checkout: (externalId: string, priceId: string) =>
      api.POST("/api/v1/customers/{externalId}/checkout", {
        params: customer(externalId),
        body: { priceId },
      }),
    portal: (externalId: string) =>
      api.POST("/api/v1/customers/{externalId}/portal", { params: customer(externalId) }),
    /** Grants once per sourceKey, so it is retried like the keyed POSTs. */
    grant: (externalId: string, body: Schemas["GrantBody"]) =>
      api.POST("/api/v1/customers/{externalId}/grants", {
        params: customer(externalId),
        body,
        ...retried,
      }),
    consume: (externalId: string, input: ConsumeInput) =>
      api.POST("/api/v1/customers/{externalId}/consume", {
        params: customer(externalId),
        body: { ...input, idempotencyKey: input.idempotencyKey ?? crypto.randomUUID() },
        ...retried,
      }),
    reserve: (externalId: string, input: ReserveInput) =>
      api.POST("/api/v1/customers/{externalId}/reservations", {
        params: customer(externalId),
        body: { ...input, idempotencyKey: input.idempotencyKey ?? crypto.randomUUID() },
        ...retried,
      }),
    /** A settlement repeated with the same amount answers the first answer: retried. */
    settle: (reservationId: number, body: Schemas["SettleBody"]) =>
      api.POST("/api/v1/reservations/{id}/settle", {
        params: { path: { id: String(reservationId) } },
        body,
        ...retried,
      }),
    /** A release can be repeated: retried. */
    release: (reservationId: number) =>
      api.POST("/api/v1/reservations/{id}/release", {
        params: { path: { id: String(reservationId) } },
        ...retried,
      }),
    refund: (usageId: number, body: Schemas["RefundBody"]) =>
      api.POST("/api/v1/usage/{usageId}/refund", {
        params: { path: { usageId: String(usageId) } },
        body,
        ...retried,
      }),
    /** Every event carries its idempotencyKey, so the batch is retried as a whole. */
    usageBatch: (events: Schemas["UsageEvent"][]) =>
      api.POST("/api/v1/usage/batch", { body: { events }, ...retried }),
  };
}

export type TallyClient = ReturnType<typeof createTallyClient>;
