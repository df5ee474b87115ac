// The official Creem SDK, built once per configuration, and Creem's failures turned into Tally's
// errors. config.creem.apiUrl is CREEM_API_URL, else the test or live API by the key's prefix.
import { Creem } from "creem";
import {
  ConnectionError,
  CreemError,
  RequestTimeoutError,
  ResponseValidationError,
} from "creem/models/errors";
import type { Config } from "../utils/config.ts";
import { HttpError } from "../utils/errors.ts";
import { log } from "../utils/log.ts";

const REQUEST_TIMEOUT_MS = 15_000;

const clients = new WeakMap<NonNullable<Config["creem"]>, Creem>();

/** The Creem client for this configuration; 503 naming the setting when Creem is off. */
export function creemClient(config: Config): Creem {
  const settings = config.creem;
  if (!settings) {
    throw new HttpError(503, "unavailable", "Creem is not configured: CREEM_API_KEY is not set");
  }
  let client = clients.get(settings);
  if (!client) {
    client = new Creem({
      apiKey: settings.apiKey,
      serverURL: settings.apiUrl,
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    clients.set(settings, client);
  }
  return client;
}

/**
 * Runs one Creem call. An answer of 429 or 5xx, or no answer in time, is a 503 (the user may try
 * again); a request Creem refuses, or an answer the SDK cannot read, is a fault in Tally's setup,
 * logged without secrets and answered 500.
 */
export async function callCreem<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const unreachable = error instanceof ConnectionError || error instanceof RequestTimeoutError ||
      (error instanceof CreemError && !(error instanceof ResponseValidationError) &&
        (error.statusCode === 429 || error.statusCode >= 500));
    if (unreachable) {
      throw new HttpError(
        503,
        "unavailable",
        `Creem is unavailable (${action}); try again shortly`,
        {
          "Retry-After": "5",
        },
      );
    }
    if (error instanceof CreemError) {
      // The body is Creem's error text about Tally's request; it never echoes the API key.
      log("error", `Creem refused ${action}`, {
        status: error.statusCode,
        error: error.body.slice(0, 500),
      });
      throw new HttpError(500, "internal", `the payment provider refused the request (${action})`);
    }
    throw error;
  }
}
