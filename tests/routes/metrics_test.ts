// GET /metrics (routes/metrics.ts, middlewares/metrics.ts, utils/metrics.ts): the counters move by
// exactly the traffic sent, labelled by route pattern (never an id from the URL or the body); the
// daily run's gauges come from credits.daily_runs; METRICS_TOKEN guards the scrape when set.
import assert from "node:assert/strict";
import { signedUp, withServer } from "../helpers/http.ts";
import {
  postStripe,
  stripeCheckoutSession,
  stripeEvent,
  uniqueId,
  WEBHOOK_ENV,
} from "../helpers/fixtures_webhooks.ts";
import { newCustomer, withV1 } from "./api/v1/_v1.ts";

type Samples = Map<string, number>;

/** A sample's key: its name and its labels in name order, as `name{a="1",b="2"}`. */
function key(name: string, labels: Record<string, string> = {}): string {
  const pairs = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return `${name}{${pairs.map(([k, v]) => `${k}="${v}"`).join(",")}}`;
}

function parse(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2];
    }
    samples.set(key(match[1], labels), Number(match[3]));
  }
  return samples;
}

async function scrape(
  baseUrl: string,
  headers: Record<string, string> = {},
): Promise<{ text: string; samples: Samples }> {
  const response = await fetch(`${baseUrl}/metrics`, { headers });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  return { text, samples: parse(text) };
}

const moved = (before: Samples, after: Samples, sample: string) =>
  (after.get(sample) ?? 0) - (before.get(sample) ?? 0);

Deno.test("GET /metrics: counters move by exactly the traffic sent, by route pattern", async () => {
  await withServer(async (server) => {
    const { client, userId } = await signedUp(server);
    const before = (await scrape(server.baseUrl)).samples;

    const spent = await client.request("POST", "/api/me/credits/consume", {
      amount: 3,
      idempotencyKey: uniqueId("key"),
    });
    assert.equal(spent.status, 200);
    const short = await client.request("POST", "/api/me/credits/consume", {
      amount: 1_000_000,
      idempotencyKey: uniqueId("key"),
    });
    assert.equal(short.status, 402);

    const session = stripeCheckoutSession({
      userId,
      customer: uniqueId("cus"),
      priceId: "price_pkg_standard",
    });
    const purchase = stripeEvent("checkout.session.completed", session);
    assert.equal((await postStripe(server.baseUrl, purchase)).json?.result, "processed");
    assert.equal((await postStripe(server.baseUrl, purchase)).json?.result, "duplicate");
    const unknownType = stripeEvent("customer.created", {
      id: uniqueId("cus"),
      object: "customer",
    });
    assert.equal((await postStripe(server.baseUrl, unknownType)).json?.result, "ignored");
    const forged = stripeEvent("customer.created", { id: uniqueId("cus"), object: "customer" });
    const refused = await postStripe(server.baseUrl, forged, { signature: "t=1,v1=00" });
    assert.equal(refused.status, 400);

    const unknownPath = `/no-such-page/${crypto.randomUUID()}`;
    const missing = await fetch(`${server.baseUrl}${unknownPath}`);
    await missing.body?.cancel();
    assert.equal(missing.status, 404);

    const { text, samples: after } = await scrape(server.baseUrl);
    const consumeRoute = { method: "POST", route: "/api/me/credits/consume" };
    assert.equal(
      moved(before, after, key("tally_http_requests_total", { ...consumeRoute, status: "200" })),
      1,
    );
    assert.equal(
      moved(before, after, key("tally_http_requests_total", { ...consumeRoute, status: "402" })),
      1,
    );
    assert.equal(
      moved(before, after, key("tally_http_request_duration_seconds_count", consumeRoute)),
      2,
    );
    assert.equal(moved(before, after, key("tally_consumes_total", { result: "ok" })), 1);
    assert.equal(
      moved(before, after, key("tally_consumes_total", { result: "insufficient_credits" })),
      1,
    );

    const stripeRoute = { method: "POST", route: "/api/webhooks/stripe" };
    assert.equal(
      moved(before, after, key("tally_http_requests_total", { ...stripeRoute, status: "200" })),
      3,
    );
    assert.equal(
      moved(before, after, key("tally_http_requests_total", { ...stripeRoute, status: "400" })),
      1,
    );
    for (const result of ["processed", "duplicate", "ignored", "rejected"]) {
      const sample = key("tally_webhooks_total", { provider: "stripe", result });
      assert.equal(moved(before, after, sample), 1, result);
    }
    assert.equal(
      moved(before, after, key("tally_webhooks_total", { provider: "stripe", result: "failed" })),
      0,
    );

    assert.equal(
      moved(
        before,
        after,
        key("tally_http_requests_total", { method: "GET", route: "unmatched", status: "404" }),
      ),
      1,
    );
    // The first scrape is counted once it has answered, so the second one sees it.
    assert.equal(
      moved(
        before,
        after,
        key("tally_http_requests_total", { method: "GET", route: "/metrics", status: "200" }),
      ),
      1,
    );
    for (const secret of [userId, purchase.id, unknownType.id, forged.id, unknownPath]) {
      assert.ok(!text.includes(secret), `the scrape names ${secret}`);
    }
    for (const [sample] of after) {
      const route = /route="([^"]*)"/.exec(sample)?.[1];
      if (route !== undefined) {
        assert.ok(route === "unmatched" || route.startsWith("/"), sample);
        assert.doesNotMatch(route, /[0-9a-f]{8}-[0-9a-f]{4}-/, sample);
      }
    }
  }, WEBHOOK_ENV);
});

Deno.test("GET /metrics: /api/v1 consumptions by their pattern and result", async () => {
  await withV1(async (v1) => {
    const customer = await newCustomer(v1);
    const stranger = `cust_${crypto.randomUUID()}`;
    const consume = (externalId: string, amount: number) =>
      v1.call("POST", `/api/v1/customers/${externalId}/consume`, {
        amount,
        idempotencyKey: uniqueId("key"),
      });
    const before = (await scrape(v1.server.baseUrl)).samples;
    assert.equal((await consume(customer.externalId, 1)).status, 200);
    assert.equal((await consume(customer.externalId, 2)).status, 200);
    assert.equal((await consume(customer.externalId, 1_000_000)).status, 402);
    assert.equal((await consume(stranger, 1)).status, 404);
    const { text, samples: after } = await scrape(v1.server.baseUrl);

    const route = { method: "POST", route: "/api/v1/customers/:externalId/consume" };
    for (const [status, count] of [["200", 2], ["402", 1], ["404", 1]] as const) {
      assert.equal(
        moved(before, after, key("tally_http_requests_total", { ...route, status })),
        count,
        status,
      );
    }
    assert.equal(moved(before, after, key("tally_consumes_total", { result: "ok" })), 2);
    assert.equal(
      moved(before, after, key("tally_consumes_total", { result: "insufficient_credits" })),
      1,
    );
    assert.equal(
      moved(before, after, key("tally_consumes_total", { result: "customer_not_found" })),
      1,
    );
    assert.ok(!text.includes(customer.externalId) && !text.includes(stranger));
  });
});

Deno.test("GET /metrics: the daily run's gauges and the failed webhooks from the database", async () => {
  await withServer(async (server) => {
    const sql = server.db.sql;
    const { samples: before } = await scrape(server.baseUrl);
    const [{ last }] = await sql<{ last: number | null }[]>`
      select extract(epoch from max(finished_at))::float8 as last from credits.daily_runs
      where status in ('done', 'degraded')`;
    assert.equal(before.get(key("tally_daily_run_last_success_timestamp_seconds")), last ?? 0);

    const startedAt = Date.now() / 1000;
    await sql`call credits.run_daily(now(), 'test')`;
    // A run that found nothing to do still counts as a success; a failed batch is recorded so.
    const [run] = await sql<{ id: number; duration_ms: number; finished_at: Date }[]>`
      select id, duration_ms, finished_at from credits.daily_runs order by id desc limit 1`;
    await sql`update credits.daily_runs set failed_batches = 2 where id = ${run.id}`;
    await sql`
      insert into billing.webhook_events (provider, event_id, type, status, event, received_at)
      values ('stripe', ${uniqueId("evt")}, 'invoice.paid', 'failed', '{}', now())`;

    const { samples: after } = await scrape(server.baseUrl);
    const lastSuccess = after.get(key("tally_daily_run_last_success_timestamp_seconds"))!;
    assert.ok(lastSuccess >= startedAt - 1, `${lastSuccess} before ${startedAt}`);
    assert.ok(Math.abs(lastSuccess - run.finished_at.getTime() / 1000) < 0.01);
    assert.equal(after.get(key("tally_daily_run_duration_seconds")), run.duration_ms / 1000);
    assert.equal(moved(before, after, key("tally_daily_run_failed_batches_total")), 2);
    assert.equal(moved(before, after, key("tally_webhook_inbox_failed")), 1);
  });
});

Deno.test("GET /metrics with METRICS_TOKEN: 401 without the bearer token, 200 with it", async () => {
  const token = "metrics-token-for-tests";
  await withServer(async (server) => {
    for (const authorization of [undefined, "Bearer wrong", `Basic ${btoa(`x:${token}`)}`, token]) {
      const response = await fetch(`${server.baseUrl}/metrics`, {
        headers: authorization === undefined ? {} : { authorization },
      });
      assert.equal(response.status, 401, String(authorization));
      assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="metrics"');
      assert.equal((await response.json()).error, "unauthorized");
    }
    const { samples } = await scrape(server.baseUrl, { authorization: `Bearer ${token}` });
    assert.ok(samples.has(key("tally_daily_run_failed_batches_total")));
  }, { METRICS_TOKEN: token });
});
