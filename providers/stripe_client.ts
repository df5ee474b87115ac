// The Stripe SDK, built once per configuration, and Stripe's failures turned into Tally's errors.
// STRIPE_API_URL (config.stripe.apiUrl) points the SDK elsewhere than api.stripe.com: the tests
// use it to talk to a local stand-in.
import Stripe from "stripe";
import type { Config } from "../utils/config.ts";
import { HttpError } from "../utils/errors.ts";
import { log } from "../utils/log.ts";

const REQUEST_TIMEOUT_MS = 15_000;

const clients = new WeakMap<NonNullable<Config["stripe"]>, Stripe>();

/** The Stripe client for this configuration; 503 naming the setting when Stripe is off. */
export function stripeClient(config: Config): Stripe {
  const settings = config.stripe;
  if (!settings) {
    throw new HttpError(
      503,
      "unavailable",
      "Stripe is not configured: STRIPE_SECRET_KEY is not set",
    );
  }
  let client = clients.get(settings);
  if (!client) {
    const api = settings.apiUrl ? new URL(settings.apiUrl) : undefined;
    const protocol = api?.protocol === "http:" ? "http" : "https";
    client = new Stripe(settings.secretKey, {
      // Web fetch rather than node:http: one HTTP stack for the whole app, in Deno as elsewhere.
      httpClient: Stripe.createFetchHttpClient(),
      ...(api
        ? {
          host: api.hostname,
          port: api.port || (protocol === "http" ? 80 : 443),
          protocol,
        }
        : {}),
      timeout: REQUEST_TIMEOUT_MS,
      maxNetworkRetries: 1,
      telemetry: false,
    });
    clients.set(settings, client);
  }
  return client;
}

/**
 * Runs one Stripe call. A network fault, a rate limit or a Stripe-side error is a 503 (the user
 * may try again); a request Stripe refuses is a fault in Tally's setup (say, a price ID in the
 * plans file that this Stripe account lacks), logged without secrets and answered 500.
 */
export async function callStripe<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof Stripe.errors.StripeError)) throw error;
    const status = error.statusCode ?? 0;
    if (
      error instanceof Stripe.errors.StripeConnectionError || status === 429 || status >= 500 ||
      status === 0
    ) {
      throw new HttpError(
        503,
        "unavailable",
        `Stripe is unavailable (${action}); try again shortly`,
        {
          "Retry-After": "5",
        },
      );
    }
    log("error", `Stripe refused ${action}`, { status, type: error.type, error: error.message });
    throw new HttpError(500, "internal", `the payment provider refused the request (${action})`);
  }
}
