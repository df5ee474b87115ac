// The customers of the server-to-server API at the SQL level (sql/api_customers.sql): PUT by
// externalId with the web sign-up's grants, linking by email, the bodies, CU001/CU002/CU003, and
// the races (parallel PUTs of one new customer, parallel links, a source key taken meanwhile).
import assert from "node:assert/strict";
import type { Sql } from "../../db/client.ts";
import { withDatabase } from "../helpers/db.ts";
import { assertSqlState } from "../helpers/assert.ts";

const DAY = 86_400_000;
/** A moment a day ahead: grants made "then" are not expired by the real clock meanwhile. */
const AT = new Date(Math.ceil(Date.now() / DAY) * DAY + 3_600_000);

type Customer = {
  id: string;
  externalId: string;
  email: string | null;
  plan: { id: string; kind: string; status: string; renewsAt: string | null };
  balance: number;
  reserved: number;
};
type Put = { created: boolean; customer: Customer };

async function put(
  sql: Sql,
  externalId: string,
  email: string | null = null,
  name: string | null = null,
): Promise<Put> {
  const [row] = await sql<{ put: Put }[]>`
    select api.put_customer(${externalId}, ${email}, ${name}, ${AT}) as put`;
  return row.put;
}

/** The user's grants as kind, amount, expiry and key with the user id written as <user>. */
async function grantsOf(sql: Sql, user: string): Promise<string[]> {
  const rows = await sql<{ line: string }[]>`
    select g.kind || ' ' || g.amount || ' ' || coalesce(app.iso(g.expires_at), 'never') || ' '
           || replace(g.source_key, ${user}, '<user>') as line
      from credits.grants g where g.user_id = ${user} order by g.id`;
  return rows.map((row) => row.line);
}

async function userCount(sql: Sql): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from app.users`;
  return n;
}

Deno.test("a new customer gets exactly the sign-up grants of a web sign-up, and its body", async () => {
  await withDatabase(async ({ sql }) => {
    const [{ web }] = await sql<{ web: string }[]>`
      select app.signup('web@test.local', 'hash', 'Web', ${AT}) as web`;
    const first = await put(sql, "app-user_1.a:b@c", " Ann@Example.COM ", "Ann");
    assert.equal(first.created, true);
    const user = first.customer.id;
    const [{ me }] = await sql<{ me: { plan: Customer["plan"] } }[]>`
      select app.me(${user}, ${AT}) as me`;
    assert.equal(me.plan.id, "free");
    assert.deepEqual(first.customer, {
      id: user,
      externalId: "app-user_1.a:b@c",
      email: "ann@example.com",
      plan: me.plan,
      balance: 100,
      reserved: 0,
    });
    assert.deepEqual(await grantsOf(sql, user), await grantsOf(sql, web));
    assert.equal((await grantsOf(sql, user)).length, 2);
    const [row] = await sql<{ name: string; created: Date }[]>`
      select name, created_at as created from app.users where id = ${user}`;
    assert.deepEqual({ ...row }, { name: "Ann", created: AT });

    const [{ body }] = await sql<{ body: Customer }[]>`
      select api.customer('app-user_1.a:b@c', ${AT}) as body`;
    assert.deepEqual(body, first.customer);
    const [{ id }] = await sql<{ id: string }[]>`
      select api.customer_user('app-user_1.a:b@c') as id`;
    assert.equal(id, user);
  });
});

Deno.test("a PUT of an existing customer updates what it is given and grants nothing", async () => {
  await withDatabase(async ({ sql }) => {
    const { customer } = await put(sql, "c1");
    assert.equal(customer.email, null, "created without an email");
    const again = await put(sql, "c1");
    assert.equal(again.created, false);
    assert.deepEqual(again.customer, customer);

    const named = await put(sql, "c1", "C1@test.local", "Cee");
    assert.equal(named.created, false);
    assert.equal(named.customer.email, "c1@test.local");
    const kept = await put(sql, "c1", null, null);
    assert.equal(kept.customer.email, "c1@test.local", "an absent email keeps the one stored");
    const [{ name }] = await sql<{ name: string }[]>`select name from app.users
      where id = ${customer.id}`;
    assert.equal(name, "Cee");
    assert.equal((await grantsOf(sql, customer.id)).length, 2);
    assert.equal(await userCount(sql), 1);

    // Another user's email, whether a web user or another customer: email_taken, nothing changes.
    await sql`select app.signup('web@test.local', 'hash', '', ${AT})`;
    await put(sql, "c2", "c2@test.local");
    for (const taken of ["web@test.local", "c2@test.local"]) {
      await assertSqlState(put(sql, "c1", taken), "CU002", taken);
    }
    assert.equal((await put(sql, "c1")).customer.email, "c1@test.local");
  });
});

Deno.test("an email of a user without externalId links that user; another customer's is CU002", async () => {
  await withDatabase(async ({ sql }) => {
    const [{ web }] = await sql<{ web: string }[]>`
      select app.signup('web@test.local', 'hash', 'Web', ${AT}) as web`;
    await sql`select credits.consume(${web}, 30, 'k1', null, ${AT})`;
    const linked = await put(sql, "ext-web", "WEB@test.local");
    assert.equal(linked.created, true, "the externalId is new: 201");
    assert.equal(linked.customer.id, web);
    assert.equal(linked.customer.balance, 70, "it keeps its credits");
    assert.equal((await grantsOf(sql, web)).length, 2, "and gets no second sign-up grant");
    assert.equal(await userCount(sql), 1);
    const [{ name }] = await sql<{ name: string }[]>`select name from app.users where id = ${web}`;
    assert.equal(name, "Web", "an absent name keeps the stored one");

    await assertSqlState(put(sql, "other", "web@test.local"), "CU002");
    assert.equal(await userCount(sql), 1, "CU002 creates nothing");
  });
});

Deno.test("a malformed externalId is 22023; an unknown one is CU001 everywhere and creates none", async () => {
  await withDatabase(async ({ sql }) => {
    for (const bad of ["", "a b", "é", "a/b", "x".repeat(256), "a#b"]) {
      await assertSqlState(put(sql, bad), "22023", JSON.stringify(bad));
    }
    assert.equal((await put(sql, "x".repeat(255))).created, true);
    const before = await userCount(sql);
    const calls: [string, () => Promise<unknown>][] = [
      ["customer", () => sql`select api.customer('nobody', ${AT})`],
      ["customer_user", () => sql`select api.customer_user('nobody')`],
      ["customer_credits", () => sql`select api.customer_credits('nobody', ${AT})`],
      ["customer_transactions", () => sql`select api.customer_transactions('nobody', 20)`],
      ["grant", () => sql`select api.grant('nobody', 5, 'k', null, null, null, ${AT})`],
    ];
    for (const [name, call] of calls) await assertSqlState(call, "CU001", name);
    assert.equal(await userCount(sql), before);
  });
});

Deno.test("credits and transactions are the bodies of /api/me/credits and /api/me/transactions", async () => {
  await withDatabase(async ({ sql }) => {
    const { customer } = await put(sql, "c1");
    await sql`select credits.consume(${customer.id}, 7, 'k1', 'seven', ${AT})`;
    const [row] = await sql<{ mine: unknown; theirs: unknown; page: unknown; kind: unknown }[]>`
      select api.customer_credits('c1', ${AT}) as mine,
             credits.summary(${customer.id}, ${AT}) as theirs,
             api.customer_transactions('c1', 2, null, null) = credits.transactions(${customer.id}, 2)
               as page,
             api.customer_transactions('c1', 20, null, 'usage') as kind`;
    assert.deepEqual(row.mine, row.theirs);
    assert.equal((row.mine as { balance: number }).balance, 93);
    assert.equal(row.page, true);
    const items = (row.kind as { items: { kind: string; amount: number }[] }).items;
    assert.deepEqual(items.map((item) => [item.kind, item.amount]), [["usage", -7]]);
  });
});

/** n reserved connections, so that n calls really run at once. */
async function parallel<T>(sql: Sql, n: number, call: (conn: Sql, i: number) => Promise<T>) {
  const conns = await Promise.all(Array.from({ length: n }, () => sql.reserve()));
  try {
    return await Promise.allSettled(conns.map((conn, i) => call(conn as unknown as Sql, i)));
  } finally {
    for (const conn of conns) conn.release();
  }
}

Deno.test("20 parallel PUTs of one new externalId create one user with one set of sign-up grants", async () => {
  await withDatabase(async ({ sql }) => {
    const results = await parallel(sql, 20, (conn) => put(conn, "racer", "racer@test.local"));
    const puts = results.map((result) => {
      if (result.status === "rejected") throw result.reason;
      return result.value;
    });
    assert.equal(puts.filter((p) => p.created).length, 1);
    assert.equal(new Set(puts.map((p) => p.customer.id)).size, 1);
    assert.equal(await userCount(sql), 1);
    assert.equal((await grantsOf(sql, puts[0].customer.id)).length, 2);
    assert.ok(puts.every((p) => p.customer.balance === 100));
  }, { max: 25 });
});

Deno.test("20 parallel PUTs linking one email link it once; other externalIds get CU002", async () => {
  await withDatabase(async ({ sql }) => {
    const [{ web }] = await sql<{ web: string }[]>`
      select app.signup('web@test.local', 'hash', '', ${AT}) as web`;
    const same = await parallel(sql, 20, (conn) => put(conn, "linker", "web@test.local"));
    const puts = same.map((result) => {
      if (result.status === "rejected") throw result.reason;
      return result.value;
    });
    assert.equal(puts.filter((p) => p.created).length, 1);
    assert.ok(puts.every((p) => p.customer.id === web));
    assert.equal(await userCount(sql), 1);
    assert.equal((await grantsOf(sql, web)).length, 2);

    // A second web user claimed by 20 different externalIds at once: one wins, 19 are refused.
    const [{ other }] = await sql<{ other: string }[]>`
      select app.signup('other@test.local', 'hash', '', ${AT}) as other`;
    const claims = await parallel(
      sql,
      20,
      (conn, i) => put(conn, `claim-${i}`, "other@test.local"),
    );
    const won = claims.filter((result) => result.status === "fulfilled");
    assert.equal(won.length, 1);
    for (const result of claims) {
      if (result.status === "rejected") {
        assert.equal((result.reason as { code?: string }).code, "CU002", String(result.reason));
      }
    }
    assert.equal(await userCount(sql), 2);
    const [{ n }] = await sql<{ n: number }[]>`
      select count(*)::int as n from app.users where external_id like 'claim-%'`;
    assert.equal(n, 1);
    assert.equal((await grantsOf(sql, other)).length, 2);
  }, { max: 25 });
});

type Granted = { created: boolean; id: number; balance: number };

async function grant(
  sql: Sql,
  externalId: string,
  amount: number,
  key: string,
  kind: string | null = null,
  expiresAt: Date | null = null,
): Promise<Granted> {
  const [row] = await sql<{ g: Granted }[]>`
    select api.grant(${externalId}, ${amount}, ${key}, ${kind}, ${expiresAt}, 'for you', ${AT})
      as g`;
  return row.g;
}

Deno.test("api.grant: bonus by default, adjustment allowed, one grant per source key", async () => {
  await withDatabase(async ({ sql }) => {
    await put(sql, "a");
    await put(sql, "b");
    const first = await grant(sql, "a", 25, "welcome");
    assert.equal(first.created, true);
    assert.equal(first.balance, 125);
    const again = await grant(sql, "a", 999, "welcome", "adjustment");
    assert.deepEqual(again, { created: false, id: first.id, balance: 125 });
    const [row] = await sql<{ kind: string; key: string; description: string; expires: Date }[]>`
      select kind, source_key as key, description, expires_at as expires from credits.grants
       where id = ${first.id}`;
    assert.deepEqual({ ...row }, {
      kind: "bonus",
      key: "api:welcome",
      description: "for you",
      expires: null,
    });

    const later = new Date(AT.getTime() + 10 * DAY);
    const adjusted = await grant(sql, "a", 5, "fix-1", "adjustment", later);
    assert.equal(adjusted.balance, 130);
    const [{ kind, expires }] = await sql<{ kind: string; expires: Date }[]>`
      select kind, expires_at as expires from credits.grants where id = ${adjusted.id}`;
    assert.deepEqual([kind, expires], ["adjustment", later]);

    // Another customer's key: CU003; an app's key never reaches Tally's own keys.
    await assertSqlState(grant(sql, "b", 25, "welcome"), "CU003");
    const { customer: b } = await put(sql, "b");
    const signupKey = `signup_gift:${b.id}`;
    const taken = await grant(sql, "b", 1, signupKey);
    assert.equal(taken.created, true, "stored as api:signup_gift:..., not the sign-up gift's key");
    assert.equal(taken.balance, 101);

    for (
      const [kind, expiresAt, amount] of [
        ["package", null, 5],
        ["signup_gift", null, 5],
        ["bonus", AT, 5],
        ["bonus", new Date(AT.getTime() - 1000), 5],
        ["bonus", null, 0],
        ["bonus", null, -3],
      ] as const
    ) {
      await assertSqlState(
        grant(sql, "a", amount, `bad-${kind}-${amount}`, kind, expiresAt),
        "22023",
        `${kind} ${expiresAt} ${amount}`,
      );
    }
    await assertSqlState(grant(sql, "a", 5, ""), "22023", "empty key");
    const [{ n }] = await sql<{ n: number }[]>`
      select count(*)::int as n from credits.grants where source_key like 'api:bad-%'`;
    assert.equal(n, 0);
  });
});

Deno.test("api.grant: a key another customer takes meanwhile is CU003, not 23505", async () => {
  await withDatabase(async ({ sql }) => {
    await put(sql, "a");
    await put(sql, "b");
    // a's grant holds the key, uncommitted, while b's call looks (sees nothing) and inserts.
    const holder = await sql.reserve();
    try {
      await holder`begin`;
      await holder`select api.grant('a', 5, 'contested', null, null, null, ${AT})`;
      const racing = grant(sql, "b", 5, "contested");
      const outcome = racing.then(() => "granted", (error) => error);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const [{ waiting }] = await sql<{ waiting: number }[]>`
        select count(*)::int as waiting from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock'`;
      assert.equal(waiting, 1, "b's call waits on a's uncommitted key");
      await holder`commit`;
      const error = await outcome;
      assert.equal((error as { code?: string }).code, "CU003", String(error));
    } finally {
      holder.release();
    }
    const [{ owners }] = await sql<{ owners: string[] }[]>`
      select array_agg(u.external_id) as owners from credits.grants g
        join app.users u on u.id = g.user_id where g.source_key = 'api:contested'`;
    assert.deepEqual(owners, ["a"]);

    // And 20 customers racing for one key: one gets it, the others CU003.
    for (let i = 0; i < 20; i++) await put(sql, `r${i}`);
    const results = await parallel(sql, 20, (conn, i) => grant(conn, `r${i}`, 3, "prize"));
    assert.equal(results.filter((result) => result.status === "fulfilled").length, 1);
    for (const result of results) {
      if (result.status === "rejected") {
        assert.equal((result.reason as { code?: string }).code, "CU003", String(result.reason));
      }
    }
  }, { max: 25 });
});
