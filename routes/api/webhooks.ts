// POST /api/webhooks/stripe and /api/webhooks/creem (docs/api.md#webhooks): raw body (1 MB at
// most), signature, the provider's event turned into the neutral shape, then ONE SQL call,
// billing.apply_event, which records and applies it in one transaction.
import { Hono } from "hono";
import type { Context } from "hono";
import { timingSafeEqual } from "node:crypto";
import Stripe from "stripe";
import type { AppEnv } from "../../utils/app_env.ts";
import { bufferedBody } from "../../middlewares/body_reader.ts";
import { HttpError } from "../../utils/errors.ts";
import type { BillingEvent, Provider } from "../../providers/billing_event.ts";
import { normalizeCreemEvent } from "../../providers/creem_events.ts";
import { normalizeStripeEvent } from "../../providers/stripe_events.ts";
import { findNul } from "../../utils/validation.ts";

const STRIPE_TOLERANCE_SECONDS = 300;
const subtleCrypto = Stripe.createSubtleCryptoProvider();

/**
 * The body as bytes. The body reader (middlewares/body_reader.ts) has read every request's body
 * under its deadline and its 1 MB cap: these are its bytes, not a copy. A request it did not see
 * (a route called on its own) is read here.
 */
export async function readRawBody(request: Request): Promise<Uint8Array<ArrayBuffer>> {
  return bufferedBody(request) ?? new Uint8Array(await request.arrayBuffer());
}

const utf8 = new TextDecoder();

function providerOff(setting: string): HttpError {
  // 503, not 404: the provider keeps retrying until the secret is configured, so nothing is lost.
  return new HttpError(503, "unavailable", `${setting} is not set`);
}

function badSignature(provider: Provider, detail: string): HttpError {
  return new HttpError(400, "invalid_request", `invalid ${provider} signature: ${detail}`);
}

function notJson(): HttpError {
  return new HttpError(400, "invalid_json", "the request body is not valid JSON");
}

/** A NUL character as the six characters of its JSON escape, which PostgreSQL text can hold. */
const escapeNul = (text: string) => text.replaceAll("\u0000", "\\u0000");

/**
 * A signed event that PostgreSQL cannot store as sent (a NUL character in its ID, type or in a
 * field Tally keeps) is kept all the same, so that the provider stops retrying and an admin sees
 * it: under its escaped ID, as kind "unstorable" with the reason and the escaped raw body, which
 * billing.apply_event records as failed with that reason (a replay fails the same way).
 */
function storable(
  eventId: string,
  type: string,
  event: BillingEvent,
  rawBody: string,
): { eventId: string; type: string; json: string } {
  const json = JSON.stringify(event);
  // JSON writes a NUL as its escape: an event without that text holds none, and is not walked.
  if (!json.includes("\\u0000") && !eventId.includes("\u0000") && !type.includes("\u0000")) {
    return { eventId, type, json };
  }
  const where = findNul(eventId) !== null
    ? "the event ID"
    : findNul(type) !== null
    ? "the event type"
    : findNul(event);
  if (where === null) return { eventId, type, json };
  return {
    eventId: escapeNul(eventId),
    type: escapeNul(type),
    json: JSON.stringify({
      kind: "unstorable",
      reason: `the event cannot be stored as sent: ${
        escapeNul(where) || "it"
      } contains a NUL character`,
      body: escapeNul(rawBody),
    }),
  };
}

async function applyEvent(
  c: Context<AppEnv>,
  provider: Provider,
  received: { eventId: string; type: string; event: BillingEvent; rawBody: string },
) {
  const { eventId, type, json } = storable(
    received.eventId,
    received.type,
    received.event,
    received.rawBody,
  );
  const [row] = await c.var.sql<{ result: string }[]>`
    select billing.apply_event(${provider}, ${eventId}, ${type}, ${json}::text::jsonb) as result`;
  return c.json({ received: true, result: row.result });
}

export const webhooks = new Hono<AppEnv>();

webhooks.post("/stripe", async (c) => {
  const secret = c.var.config.stripeWebhookSecret;
  if (!secret) throw providerOff("STRIPE_WEBHOOK_SECRET");
  const signature = c.req.header("stripe-signature");
  if (!signature) throw badSignature("stripe", "the Stripe-Signature header is missing");
  const body = utf8.decode(await readRawBody(c.req.raw));
  let verified: unknown;
  try {
    verified = await Stripe.webhooks.constructEventAsync(
      body,
      signature,
      secret,
      STRIPE_TOLERANCE_SECONDS,
      subtleCrypto,
    );
  } catch (error) {
    if (error instanceof SyntaxError) throw notJson();
    throw badSignature("stripe", error instanceof Error ? error.message.split(".")[0] : "refused");
  }
  // constructEventAsync refuses only timestamps too old; one too far ahead is refused too.
  const signedAt = Number(/(?:^|,)\s*t=(\d+)/.exec(signature)?.[1]);
  if (signedAt - Date.now() / 1000 > STRIPE_TOLERANCE_SECONDS) {
    throw badSignature("stripe", "Timestamp outside the tolerance zone (in the future)");
  }
  const { envelope, event } = normalizeStripeEvent(verified);
  return await applyEvent(c, "stripe", {
    eventId: envelope.id,
    type: envelope.type,
    event,
    rawBody: body,
  });
});

async function creemSignatureMatches(body: Uint8Array<ArrayBuffer>, given: string, secret: string) {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const expected = new Uint8Array(await crypto.subtle.sign("HMAC", key, body));
  // Creem sends lowercase hex; any other spelling is not a signature Creem made.
  if (!/^[0-9a-f]{64}$/.test(given)) return false;
  const presented = new Uint8Array(given.match(/../g)!.map((pair) => parseInt(pair, 16)));
  return timingSafeEqual(expected, presented);
}

webhooks.post("/creem", async (c) => {
  const secret = c.var.config.creemWebhookSecret;
  if (!secret) throw providerOff("CREEM_WEBHOOK_SECRET");
  const signature = c.req.header("creem-signature");
  if (!signature) throw badSignature("creem", "the creem-signature header is missing");
  const body = await readRawBody(c.req.raw);
  if (!await creemSignatureMatches(body, signature.trim(), secret)) {
    throw badSignature("creem", "no match for the body");
  }
  const text = utf8.decode(body);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw notJson();
  }
  const { envelope, event } = normalizeCreemEvent(parsed);
  return await applyEvent(c, "creem", {
    eventId: envelope.id,
    type: envelope.eventType,
    event,
    rawBody: text,
  });
});
