// The webhook boundary: signatures, bodies that are not events, size limits, a provider that is
// not configured, the database going away mid-request, and the admin replay route.
import assert from "node:assert/strict";
import { connect } from "../../../db/client.ts";
import { insertUser, verifyEmail } from "../../helpers/db.ts";
import {
  creditsOf,
  creemEvent,
  inboxCount,
  postCreem,
  postStripe,
  signCreem,
  signStripe,
  stripeCheckoutSession,
  stripeEvent,
  WEBHOOK_ENV,
} from "../../helpers/fixtures_webhooks.ts";
import { Client, startTestServer } from "../../helpers/server.ts";

Deno.test("webhooks refuse what is not a signed, valid event, and store nothing", async (t) => {
  const server = await startTestServer(WEBHOOK_ENV);
  const { sql } = server.db;
  const base = server.baseUrl;
  try {
    const user = await insertUser(sql);
    const event = stripeEvent(
      "checkout.session.completed",
      stripeCheckoutSession({ userId: user, priceId: "price_pkg_standard" }),
    );
    const payload = JSON.stringify(event);

    await t.step("stripe: missing, wrong and stale signatures", async () => {
      const missing = await postStripe(base, event, { signature: null });
      assert.equal(missing.status, 400);
      assert.match(String(missing.json?.message), /Stripe-Signature header is missing/);
      const forged = (await signStripe(payload)).replace(/v1=[0-9a-f]{4}/, "v1=0000");
      assert.equal((await postStripe(base, event, { signature: forged })).status, 400);
      const tampered = payload.replace("price_pkg_standard", "price_lifetime");
      const signature = await signStripe(payload);
      assert.equal((await postStripe(base, tampered, { signature })).status, 400);
      const stale = await postStripe(base, event, {
        timestamp: Math.floor(Date.now() / 1000) - 301,
      });
      assert.equal(stale.status, 400);
      assert.match(String(stale.json?.message), /invalid stripe signature/);
    });

    await t.step("stripe: a signed body that is not JSON, or not a usable event", async () => {
      const notJson = await postStripe(base, "this is not json");
      assert.deepEqual(notJson.status, 400);
      assert.equal(notJson.json?.error, "invalid_json");
      const noLines = stripeEvent("invoice.paid", {
        id: "in_1",
        object: "invoice",
        customer: "cus_1",
        amount_paid: 990,
        currency: "usd",
        created: 1,
        billing_reason: "subscription_cycle",
        parent: { subscription_details: { subscription: "sub_1" } },
      });
      const missing = await postStripe(base, noLines);
      assert.equal(missing.status, 400);
      assert.match(String(missing.json?.message), /not a valid stripe event: lines/);
      // A paid session without its amount is unusable (a session without a price is not: it is
      // kept as failed, see webhooks_stripe_test.ts).
      const noAmount = stripeEvent("checkout.session.completed", {
        ...stripeCheckoutSession({ userId: user, priceId: "price_pkg_standard" }),
        amount_total: null,
      });
      const unusable = await postStripe(base, noAmount);
      assert.equal(unusable.status, 400);
      assert.match(String(unusable.json?.message), /amount_total/);
      const noId = { ...event, id: "" };
      assert.equal((await postStripe(base, JSON.stringify(noId))).status, 400);
    });

    await t.step("creem: missing and wrong signatures, not JSON, missing fields", async () => {
      const creem = creemEvent("refund.created", { id: "ref_1", refund_amount: 10 });
      assert.equal((await postCreem(base, creem, { signature: null })).status, 400);
      assert.equal((await postCreem(base, creem, { signature: "ab".repeat(32) })).status, 400);
      assert.equal((await postCreem(base, creem, { signature: "not hex" })).status, 400);
      const signedOtherKey = await signCreem(JSON.stringify(creem), "another secret");
      assert.equal((await postCreem(base, creem, { signature: signedOtherKey })).status, 400);
      const notJson = await postCreem(base, "{nope");
      assert.equal(notJson.status, 400);
      assert.equal(notJson.json?.error, "invalid_json");
      const missing = await postCreem(base, creem); // a refund without its transaction
      assert.equal(missing.status, 400);
      assert.match(String(missing.json?.message), /not a valid creem event: transaction/);
    });

    await t.step("bodies over 1 MB answer 413, declared or streamed", async () => {
      const big = "x".repeat(1024 * 1024 + 1);
      const declared = await fetch(`${base}/api/webhooks/stripe`, {
        method: "POST",
        headers: { "stripe-signature": await signStripe(big) },
        body: big,
      });
      assert.equal(declared.status, 413);
      await declared.body?.cancel();
      const chunk = new Uint8Array(64 * 1024).fill(120);
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent > 1.5 * 1024 * 1024) return controller.close();
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      const streamed = await fetch(`${base}/api/webhooks/creem`, {
        method: "POST",
        headers: { "creem-signature": "00".repeat(32) },
        body: stream,
      });
      assert.equal(streamed.status, 413);
      await streamed.body?.cancel();
    });

    await t.step("none of it was stored or granted", async () => {
      assert.equal(await inboxCount(sql), 0);
      assert.equal((await creditsOf(sql, user)).balance, 0);
    });
  } finally {
    await server.close();
  }
});

Deno.test("a provider whose webhook secret is unset answers 503 and stores nothing", async () => {
  const server = await startTestServer({});
  try {
    const stripe = await postStripe(server.baseUrl, stripeEvent("customer.created", {}));
    assert.deepEqual(stripe, {
      status: 503,
      json: { error: "unavailable", message: "STRIPE_WEBHOOK_SECRET is not set" },
    });
    const creem = await postCreem(server.baseUrl, creemEvent("checkout.completed", {}));
    assert.equal(creem.status, 503);
    assert.equal(creem.json?.message, "CREEM_WEBHOOK_SECRET is not set");
    assert.equal(await inboxCount(server.db.sql), 0);
  } finally {
    await server.close();
  }
});

Deno.test("the database going away mid-request answers 503; the redelivery applies once", async () => {
  const server = await startTestServer(WEBHOOK_ENV);
  const { sql } = server.db;
  const observer = connect(server.db.url, { max: 1 });
  try {
    const user = await insertUser(sql);
    const event = stripeEvent(
      "checkout.session.completed",
      stripeCheckoutSession({ userId: user, priceId: "price_pkg_standard" }),
    );
    // Hold the user's balance row so the webhook's transaction stops half-way (inbox row written,
    // grant waiting), then kill its connection, as a crash or failover would.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = observer.begin(async (tx) => {
      await tx`select 1 from credits.balances where user_id = ${user} for update`;
      locked();
      await released;
    });
    await isLocked;
    const delivery = postStripe(server.baseUrl, event);
    let victim: number | undefined;
    for (let i = 0; i < 200 && victim === undefined; i++) {
      const rows = await sql<{ pid: number }[]>`
        select pid from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock'
           and query like '%billing.apply_event%'`;
      victim = rows[0]?.pid;
      if (victim === undefined) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.ok(victim, "the webhook's transaction never reached the lock");
    await sql`select pg_terminate_backend(${victim})`;
    const first = await delivery;
    assert.equal(first.status, 503);
    assert.equal(first.json?.error, "unavailable");
    release();
    await holder;
    assert.equal(await inboxCount(sql), 0, "nothing half-written");
    assert.equal((await creditsOf(sql, user)).balance, 0);

    const redelivery = await postStripe(server.baseUrl, event);
    assert.deepEqual(redelivery.json, { received: true, result: "processed" });
    assert.equal((await postStripe(server.baseUrl, event)).json?.result, "duplicate");
    assert.equal((await creditsOf(sql, user)).balance, 200);
  } finally {
    await observer.end();
    await server.close();
  }
});

Deno.test("admins list failed events and replay them; others get 404", async () => {
  const adminEmail = `admin-${crypto.randomUUID().slice(0, 8)}@test.local`;
  const server = await startTestServer({ ...WEBHOOK_ENV, ADMIN_EMAILS: adminEmail });
  const { sql } = server.db;
  try {
    const buyer = await insertUser(sql);
    const event = stripeEvent(
      "checkout.session.completed",
      stripeCheckoutSession({ userId: buyer, priceId: "price_pkg_later" }),
    );
    assert.equal((await postStripe(server.baseUrl, event)).json?.result, "failed");

    const anonymous = new Client(server.baseUrl);
    assert.equal((await anonymous.request("GET", "/api/admin/webhooks")).status, 404);
    const someone = new Client(server.baseUrl);
    await someone.signup();
    assert.equal((await someone.request("GET", "/api/admin/webhooks")).status, 404);
    const replayPath = `/api/admin/webhooks/stripe/${event.id}/replay`;
    assert.equal((await someone.request("POST", replayPath)).status, 404);

    // An ADMIN_EMAILS address is an admin once verified.
    const admin = new Client(server.baseUrl);
    await admin.signup(adminEmail);
    assert.equal((await admin.request("GET", "/api/admin/webhooks")).status, 404);
    await verifyEmail(sql, adminEmail);
    const listed = await admin.request("GET", "/api/admin/webhooks?status=failed");
    assert.equal(listed.status, 200);
    const events = (listed.json as { events: { eventId: string; error: string }[] }).events;
    assert.equal(events.length, 1);
    assert.equal(events[0].eventId, event.id);
    assert.match(events[0].error, /price_pkg_later/);

    // Still unknown: the replay fails again and says why.
    assert.deepEqual((await admin.request("POST", replayPath)).json, { result: "failed" });
    await sql`insert into billing.packages (id, name, credits) values ('later', 'Later', 75)`;
    await sql`insert into billing.prices (price_id, provider, package_id, interval, amount, currency)
              values ('price_pkg_later', 'stripe', 'later', 'once', 500, 'usd')`;
    assert.deepEqual((await admin.request("POST", replayPath)).json, { result: "processed" });
    assert.deepEqual((await admin.request("POST", replayPath)).json, { result: "duplicate" });
    assert.equal((await creditsOf(sql, buyer)).balance, 75);
    const unknown = await admin.request("POST", "/api/admin/webhooks/stripe/evt_nope/replay");
    assert.equal(unknown.status, 404);
  } finally {
    await server.close();
  }
});
