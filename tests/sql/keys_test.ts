// The key formats and advisory locks of sql/keys.sql and sql/locks.sql: each function builds,
// byte for byte, the key that the literal it replaced built (stored keys keep their meaning), and
// takes the same lock as before (servers of two versions exclude each other during a deploy).
import assert from "node:assert/strict";
import { withDatabase } from "../helpers/db.ts";

const USER = "0b7a4c1e-3f55-4d2a-9a61-2f4c8e1d7b90";
// 23:30 UTC on the last day of a month: already the next day (and month) in Chatham (UTC+13:45).
const AT = "2026-11-30T23:30:05.123Z";

Deno.test("every key function builds the key its literal built, whatever the session's time zone", async () => {
  await withDatabase(async ({ sql }) => {
    const rows = await sql.begin(async (tx) => {
      await tx`set local timezone = 'Pacific/Chatham'`;
      return await tx<{ name: string; key: string; literal: string }[]>`
        with v (u, at, sub, pay, slot, plan, ref) as (
          select ${USER}::uuid, ${AT}::timestamptz, 42::bigint, 7::bigint, 3, 'pro', 'form-1')
        select x.name, x.key, x.literal from v cross join lateral (values
          ('signup_gift', credits.signup_gift_key(u), 'signup_gift:' || u),
          ('free_monthly', credits.free_monthly_key(u, at),
           'free_monthly:' || u || ':' || to_char(at at time zone 'UTC', 'YYYY-MM')),
          ('daily_signin', credits.daily_signin_key(u, at),
           'daily_signin:' || u || ':' || to_char(at at time zone 'UTC', 'YYYY-MM-DD')),
          ('adjustment', credits.adjustment_key(ref), 'adjustment:' || ref),
          ('api_grant', credits.api_grant_key(ref), 'api:' || ref),
          ('yearly_period', credits.yearly_period_key(sub, at),
           'subscription_monthly:' || sub || ':'
             || to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')),
          ('yearly_slot', credits.yearly_slot_key(sub, at, slot),
           'subscription_monthly:' || sub || ':'
             || to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || ':' || slot),
          ('lifetime_purchase', credits.lifetime_purchase_key(pay), 'lifetime_monthly:' || pay),
          ('lifetime_slot', credits.lifetime_slot_key(pay, slot),
           'lifetime_monthly:' || pay || ':' || slot),
          ('package', billing.package_key(pay), 'package:' || pay),
          ('purchase_package', billing.purchase_key('package', pay), 'package:' || pay),
          ('purchase_lifetime', billing.purchase_key('lifetime', pay), 'lifetime_monthly:' || pay),
          ('period', billing.period_key(sub, at),
           'subscription_period:' || sub || ':'
             || to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')),
          ('trial', billing.trial_key(sub), 'trial:' || sub),
          ('upgrade', billing.upgrade_key(sub, at, plan),
           'upgrade:' || sub || ':' || to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
             || ':' || plan),
          ('refund', billing.refund_reference(pay, 1500), 'refund:' || pay || ':' || 1500),
          ('dispute', billing.dispute_reference('dp_1'), 'dispute:' || 'dp_1'),
          ('customer_ref', billing.customer_event_ref('cus_1'), 'customer:' || 'cus_1'),
          ('subscription_ref', billing.subscription_event_ref('sub_1'), 'subscription:' || 'sub_1'),
          ('payment_ref', billing.payment_event_ref('pi_1'), 'payment:' || 'pi_1')
        ) as x (name, key, literal)`;
    });
    for (const row of rows) assert.equal(row.key, row.literal, row.name);
    // And the texts themselves, as the rows already stored hold them.
    const keys = Object.fromEntries(rows.map((row) => [row.name, row.key]));
    assert.deepEqual(keys, {
      signup_gift: `signup_gift:${USER}`,
      free_monthly: `free_monthly:${USER}:2026-11`,
      daily_signin: `daily_signin:${USER}:2026-11-30`,
      adjustment: "adjustment:form-1",
      api_grant: "api:form-1",
      yearly_period: "subscription_monthly:42:2026-11-30T23:30:05",
      yearly_slot: "subscription_monthly:42:2026-11-30T23:30:05:3",
      lifetime_purchase: "lifetime_monthly:7",
      lifetime_slot: "lifetime_monthly:7:3",
      package: "package:7",
      purchase_package: "package:7",
      purchase_lifetime: "lifetime_monthly:7",
      period: "subscription_period:42:2026-11-30T23:30:05",
      trial: "trial:42",
      upgrade: "upgrade:42:2026-11-30T23:30:05:pro",
      refund: "refund:7:1500",
      dispute: "dispute:dp_1",
      customer_ref: "customer:cus_1",
      subscription_ref: "subscription:sub_1",
      payment_ref: "payment:pi_1",
    });
    // The same inputs in the session's own words give the same keys.
    const [{ iso }] = await sql<{ iso: string }[]>`select billing.iso_utc(${AT}) as iso`;
    assert.equal(iso, "2026-11-30T23:30:05");
  });
});

type HeldLock = { classid: string; objid: string; objsubid: number; mode: string };

Deno.test("every lock function takes the advisory lock its literal took", async () => {
  await withDatabase(async ({ sql }) => {
    /** The advisory locks that one statement leaves this transaction holding. */
    const locksOf = (statement: string) =>
      sql.begin(async (tx) => {
        await tx.unsafe(statement);
        return await tx<HeldLock[]>`
          select classid::text, objid::text, objsubid::int, mode from pg_locks
           where locktype = 'advisory' and pid = pg_backend_pid()
           order by classid, objid, objsubid, mode`;
      });
    const pairs: [string, string][] = [
      ["select credits.lock_batch()", "select pg_advisory_xact_lock(7461021001)"],
      ["select credits.lock_batch_shared()", "select pg_advisory_xact_lock_shared(7461021001)"],
      ["select billing.lock_catalogue()", "select pg_advisory_xact_lock(7461021002)"],
      [
        "select billing.lock_event('stripe', 'evt_1')",
        "select pg_advisory_xact_lock(hashtextextended('stripe' || ':' || 'evt_1', 7461021005))",
      ],
      [
        "select billing._lock_refs('creem', array['payment:p_1', 'customer:c_1'])",
        `select pg_advisory_xact_lock(hashtextextended('creem:customer:c_1', 7461021003)),
                pg_advisory_xact_lock(hashtextextended('creem:payment:p_1', 7461021003))`,
      ],
      [
        "select app.lock_signup_address('203.0.113.9')",
        "select pg_advisory_xact_lock(1, hashtext(host('203.0.113.9'::inet)))",
      ],
    ];
    for (const [named, literal] of pairs) {
      const held = await locksOf(named);
      assert.ok(held.length > 0, `${named} takes a lock`);
      assert.deepEqual(held, await locksOf(literal), named);
    }
    const [{ key }] = await sql<{ key: string }[]>`select credits.batch_lock_key()::text as key`;
    assert.equal(key, "7461021001");
  });
});
