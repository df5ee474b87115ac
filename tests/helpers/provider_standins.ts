// Local HTTP servers standing in for the Stripe and Creem APIs: the only thing the tests cannot
// reach. Each imitates just the endpoints Tally calls, checks the credentials the way the real API
// does, records every request, and answers JSON shaped like the real API's.
import { Client, startTestServer, type TestServer } from "./server.ts";

export const STRIPE_TEST_KEY = "sk_test_tally_standin_0123456789";
export const CREEM_TEST_KEY = "creem_test_tally_standin_0123456789";

export type RecordedRequest = {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  /** What the stand-in answered. */
  answer?: { status: number; body: Record<string, unknown> };
};

export type Standin = {
  url: string;
  requests: RecordedRequest[];
  /** Until called again with null, every request gets this status and a provider-style error. */
  failWith(status: number | null): void;
  close(): Promise<void>;
};

type Answer = { status: number; body: unknown };
type Route = (request: RecordedRequest) => Answer;

function startStandin(
  authorize: (headers: Headers) => Answer | null,
  parseBody: (text: string, contentType: string) => Record<string, unknown>,
  routes: Record<string, Route>,
  errorBody: (status: number, message: string) => unknown,
): Standin {
  const requests: RecordedRequest[] = [];
  let failure: number | null = null;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const text = await req.text();
    const recorded: RecordedRequest = {
      method: req.method,
      path: url.pathname,
      headers: Object.fromEntries(req.headers),
      body: parseBody(text, req.headers.get("content-type") ?? ""),
    };
    requests.push(recorded);
    const answer = failure !== null
      ? { status: failure, body: errorBody(failure, "stand-in failure") }
      : authorize(req.headers) ??
        routes[`${req.method} ${url.pathname}`]?.(recorded) ??
        {
          status: 404,
          body: errorBody(404, `Unrecognized request URL (${req.method} ${url.pathname})`),
        };
    recorded.answer = answer as RecordedRequest["answer"];
    return Response.json(answer.body, { status: answer.status });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    failWith: (status) => {
      failure = status;
    },
    close: () => server.shutdown(),
  };
}

/**
 * Stripe's form encoding (`line_items[0][price]=x&metadata[user_id]=y`) back into the nested
 * object the SDK was given; keys that are all digits make arrays.
 */
export function parseStripeForm(text: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(text)) {
    const parts = key.replace(/\]/g, "").split("[");
    let node: Record<string, unknown> = root;
    parts.forEach((part, index) => {
      if (index === parts.length - 1) {
        node[part] = value;
      } else {
        node[part] ??= {};
        node = node[part] as Record<string, unknown>;
      }
    });
  }
  return arraysFromDigitKeys(root) as Record<string, unknown>;
}

function arraysFromDigitKeys(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value as Record<string, unknown>).map((
    [k, v],
  ) => [k, arraysFromDigitKeys(v)] as const);
  if (entries.length > 0 && entries.every(([k]) => /^\d+$/.test(k))) {
    return entries.sort(([a], [b]) => Number(a) - Number(b)).map(([, v]) => v);
  }
  return Object.fromEntries(entries);
}

function randomId(prefix: string): string {
  return `${prefix}${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

function stripeError(status: number, message: string, param?: string) {
  return {
    error: {
      type: status === 401
        ? "invalid_request_error"
        : status >= 500
        ? "api_error"
        : "invalid_request_error",
      message,
      ...(param ? { param } : {}),
    },
  };
}

/** A stand-in for api.stripe.com: Checkout Sessions and billing portal sessions. */
export function startStripeStandin(secretKey = STRIPE_TEST_KEY): Standin {
  return startStandin(
    (headers) =>
      headers.get("authorization") === `Bearer ${secretKey}`
        ? null
        : { status: 401, body: stripeError(401, "Invalid API Key provided: sk_test_****") },
    (text) => parseStripeForm(text),
    {
      "POST /v1/checkout/sessions": ({ body }) => {
        const mode = body.mode;
        if (mode !== "payment" && mode !== "subscription" && mode !== "setup") {
          return { status: 400, body: stripeError(400, "Invalid mode", "mode") };
        }
        if (!Array.isArray(body.line_items) || body.line_items.length === 0) {
          return { status: 400, body: stripeError(400, "Missing line_items", "line_items") };
        }
        if (body.customer !== undefined && body.customer_email !== undefined) {
          return {
            status: 400,
            body: stripeError(400, "You may only specify one of customer and customer_email"),
          };
        }
        if (typeof body.customer === "string" && !body.customer.startsWith("cus_")) {
          return { status: 400, body: stripeError(400, `No such customer: '${body.customer}'`) };
        }
        const id = randomId("cs_test_");
        return {
          status: 200,
          body: {
            id,
            object: "checkout.session",
            mode,
            status: "open",
            payment_status: "unpaid",
            livemode: false,
            client_reference_id: body.client_reference_id ?? null,
            customer: body.customer ?? null,
            customer_email: body.customer_email ?? null,
            metadata: body.metadata ?? {},
            success_url: body.success_url,
            cancel_url: body.cancel_url ?? null,
            url: `https://checkout.stripe.com/c/pay/${id}`,
            created: Math.floor(Date.now() / 1000),
          },
        };
      },
      "POST /v1/billing_portal/sessions": ({ body }) => {
        if (typeof body.customer !== "string" || !body.customer.startsWith("cus_")) {
          return { status: 400, body: stripeError(400, "Missing or unknown customer", "customer") };
        }
        const id = randomId("bps_");
        return {
          status: 200,
          body: {
            id,
            object: "billing_portal.session",
            customer: body.customer,
            livemode: false,
            return_url: body.return_url ?? null,
            url: `https://billing.stripe.com/p/session/test_${id}`,
            created: Math.floor(Date.now() / 1000),
          },
        };
      },
    },
    stripeError,
  );
}

function creemError(status: number, message: string) {
  return { trace_id: crypto.randomUUID(), status, error: message, message: [message] };
}

/** A stand-in for the Creem API: checkouts and customer billing links. */
export function startCreemStandin(apiKey = CREEM_TEST_KEY): Standin {
  return startStandin(
    (headers) =>
      headers.get("x-api-key") === apiKey
        ? null
        : { status: 403, body: creemError(403, "Forbidden") },
    (text) => (text ? JSON.parse(text) : {}),
    {
      "POST /v1/checkouts": ({ body }) => {
        if (typeof body.product_id !== "string" || !body.product_id.startsWith("prod_")) {
          return { status: 404, body: creemError(404, "Product not found") };
        }
        const id = randomId("ch_");
        return {
          status: 200,
          body: {
            id,
            mode: "test",
            object: "checkout",
            status: "pending",
            request_id: body.request_id,
            product: body.product_id,
            units: body.units ?? 1,
            checkout_url: `https://creem.io/test/checkout/${body.product_id}/${id}`,
            success_url: body.success_url ?? null,
            metadata: body.metadata,
          },
        };
      },
      "POST /v1/customers/billing": ({ body }) => {
        if (typeof body.customer_id !== "string" || !body.customer_id.startsWith("cust_")) {
          return { status: 404, body: creemError(404, "Customer not found") };
        }
        return {
          status: 200,
          body: {
            customer_portal_link: `https://creem.io/test/my-orders/login/${
              randomId("")
            }?customer=${body.customer_id}`,
          },
        };
      },
    },
    creemError,
  );
}

export type CheckoutFixture = {
  app: TestServer;
  stripe: Standin;
  creem: Standin;
  /** A signed-up user's browser on APP_URL's origin. */
  signedIn(): Promise<{ client: Client; user: { id: string; email: string } }>;
  close(): Promise<void>;
};

/**
 * Tally with both providers pointed at their stand-ins. env adds or overrides settings; a
 * setting given as "" is left unset (so a test can switch a provider off).
 */
export async function startCheckoutFixture(env: Record<string, string> = {}): Promise<
  CheckoutFixture
> {
  const stripe = startStripeStandin();
  const creem = startCreemStandin();
  const settings = Object.fromEntries(
    Object.entries({
      STRIPE_SECRET_KEY: STRIPE_TEST_KEY,
      STRIPE_API_URL: stripe.url,
      CREEM_API_KEY: CREEM_TEST_KEY,
      CREEM_API_URL: creem.url,
      ...env,
    }).filter(([, value]) => value !== ""),
  );
  const app = await startTestServer(settings);
  return {
    app,
    stripe,
    creem,
    signedIn: async () => {
      const client = new Client(app.baseUrl);
      const user = await client.signup();
      return { client, user };
    },
    close: async () => {
      await app.close();
      await stripe.close();
      await creem.close();
    },
  };
}
