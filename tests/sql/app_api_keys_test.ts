// sql/app_api_keys.sql: keys made, listed (never the hash), revoked once, and checked by hash,
// with last_used_at written at most once a minute however busy the key is.
import assert from "node:assert/strict";
import { connect, type Sql } from "../../db/client.ts";
import { assertSqlState } from "../helpers/assert.ts";
import { insertUser, withDatabase } from "../helpers/db.ts";

type Listed = {
  id: number;
  name: string;
  scopes: string[];
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
};
type Checked = { key_hash: Uint8Array; id: number; scopes: string[] };

const T0 = new Date("2026-12-02T10:00:00Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

function randomHash(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

async function create(
  sql: Sql,
  name: string,
  scopes: string[],
  hash = randomHash(),
  createdBy: string | null = null,
): Promise<{ id: number; name: string; scopes: string[]; createdAt: string }> {
  const [row] = await sql<
    { key: { id: number; name: string; scopes: string[]; createdAt: string } }[]
  >`
    select app.create_api_key(${name}, ${scopes}::text[], ${hash}, 'tally_sk_AbCd', ${createdBy},
                              ${T0}) as key`;
  return row.key;
}

async function list(sql: Sql): Promise<Listed[]> {
  const [row] = await sql<{ keys: Listed[] }[]>`select app.api_keys() as keys`;
  return row.keys;
}

/** app.check_api_keys of one hash, as the middleware calls it (the array built from hex). */
async function check(sql: Sql, hashes: Uint8Array[], now: Date): Promise<Checked[]> {
  const hex = hashes.map((h) => Array.from(h, (b) => b.toString(16).padStart(2, "0")).join(""));
  return await sql<Checked[]>`
    select c.key_hash, c.id, c.scopes
      from app.check_api_keys(
             (select array_agg(decode(h, 'hex')) from unnest(${hex}::text[]) h), ${now}) c`;
}

Deno.test("create_api_key: canonical scopes, trimmed name, the answer without hash or prefix", async () => {
  await withDatabase(async ({ sql }) => {
    const admin = await insertUser(sql);
    const created = await create(
      sql,
      "  Backend  ",
      ["write", "read", "read"],
      randomHash(),
      admin,
    );
    assert.deepEqual(Object.keys(created).sort(), ["createdAt", "id", "name", "scopes"]);
    assert.equal(created.name, "Backend");
    assert.deepEqual(created.scopes, ["read", "write"]);
    assert.equal(new Date(created.createdAt).getTime(), T0.getTime());
    const [row] = await sql<{ created_by: string; last_used_at: Date | null }[]>`
      select created_by, last_used_at from app.api_keys where id = ${created.id}`;
    assert.equal(row.created_by, admin);
    assert.equal(row.last_used_at, null);
    assert.deepEqual((await create(sql, "reader", ["read"])).scopes, ["read"]);
  });
});

Deno.test("create_api_key: bad names, scopes, hashes and prefixes are 22023; a repeated hash 23505", async () => {
  await withDatabase(async ({ sql }) => {
    for (const name of ["", "   ", "x".repeat(101)]) {
      await assertSqlState(create(sql, name, ["read"]), "22023", `name ${JSON.stringify(name)}`);
    }
    assert.equal((await create(sql, "x".repeat(100), ["read"])).name.length, 100);
    for (const scopes of [[], ["write"], ["read", "admin"], ["admin"]]) {
      await assertSqlState(create(sql, "k", scopes), "22023", `scopes ${JSON.stringify(scopes)}`);
    }
    await assertSqlState(
      sql`select app.create_api_key('k', '{read}', ${new Uint8Array(31)}, 'p', null, ${T0})`,
      "22023",
    );
    await assertSqlState(
      sql`select app.create_api_key('k', '{read}', ${randomHash()}, '', null, ${T0})`,
      "22023",
    );
    const hash = randomHash();
    await create(sql, "first", ["read"], hash);
    await assertSqlState(create(sql, "second", ["read"], hash), "23505");
    assert.equal((await list(sql)).length, 2); // "x"*100 and "first"
  });
});

Deno.test("api_keys: newest first, every listed field, never the hash", async () => {
  await withDatabase(async ({ sql }) => {
    assert.deepEqual(await list(sql), []);
    const first = await create(sql, "first", ["read"]);
    const second = await create(sql, "second", ["read", "write"]);
    const keys = await list(sql);
    assert.deepEqual(keys.map((k) => k.id), [second.id, first.id]);
    assert.deepEqual(keys[1], {
      id: first.id,
      name: "first",
      scopes: ["read"],
      prefix: "tally_sk_AbCd",
      createdAt: first.createdAt,
      lastUsedAt: null,
      revokedAt: null,
    });
  });
});

Deno.test("revoke_api_key: unknown is CR007; twice keeps the first revokedAt; check no longer finds it", async () => {
  await withDatabase(async ({ sql }) => {
    await assertSqlState(sql`select app.revoke_api_key(${999}, ${T0})`, "CR007");
    const hash = randomHash();
    const key = await create(sql, "k", ["read", "write"], hash);
    const other = randomHash();
    await create(sql, "other", ["read"], other);
    assert.equal((await check(sql, [hash], at(1))).length, 1);

    const [first] = await sql<{ key: Listed }[]>`
      select app.revoke_api_key(${key.id}, ${at(10)}) as key`;
    assert.equal(new Date(first.key.revokedAt!).getTime(), at(10).getTime());
    const [again] = await sql<{ key: Listed }[]>`
      select app.revoke_api_key(${key.id}, ${at(20)}) as key`;
    assert.equal(again.key.revokedAt, first.key.revokedAt);

    const found = await check(sql, [hash, other], at(30));
    assert.deepEqual(found.map((row) => row.scopes), [["read"]]);
  });
});

Deno.test("check_api_keys: the valid keys among many hashes, repeats and unknowns ignored", async () => {
  await withDatabase(async ({ sql }) => {
    const reader = randomHash();
    const writer = randomHash();
    const readerKey = await create(sql, "reader", ["read"], reader);
    const writerKey = await create(sql, "writer", ["read", "write"], writer);
    const rows = await check(sql, [reader, randomHash(), writer, reader], at(0));
    const byId = new Map(rows.map((row) => [row.id, row]));
    assert.equal(byId.size, 2);
    assert.deepEqual(byId.get(readerKey.id)!.scopes, ["read"]);
    assert.deepEqual(byId.get(writerKey.id)!.scopes, ["read", "write"]);
    assert.deepEqual(new Uint8Array(byId.get(writerKey.id)!.key_hash), writer);
    assert.equal((await check(sql, [], at(0))).length, 0);
  });
});

Deno.test("check_api_keys: last_used_at moves at most once a minute, however many checks", async () => {
  await withDatabase(async ({ sql }) => {
    const hash = randomHash();
    const key = await create(sql, "busy", ["read"], hash);
    const state = async () => {
      const [row] = await sql<{ last_used_at: Date | null; xmin: string }[]>`
        select last_used_at, xmin::text from app.api_keys where id = ${key.id}`;
      return row;
    };
    await check(sql, [hash], at(0));
    const touched = await state();
    assert.equal(touched.last_used_at?.getTime(), at(0).getTime());
    // 50 checks within the minute: the row is never written again (same xmin, same time).
    for (let second = 1; second <= 50; second++) await check(sql, [hash], at(second));
    assert.deepEqual(await state(), touched);
    await check(sql, [hash], at(60));
    assert.deepEqual(await state(), touched, "exactly a minute later is not older than a minute");
    await check(sql, [hash], at(61));
    const later = await state();
    assert.equal(later.last_used_at?.getTime(), at(61).getTime());
    assert.notEqual(later.xmin, touched.xmin);
  });
});

Deno.test("check_api_keys: 50 parallel checks on 10 connections write a stale key's row once", async () => {
  await withDatabase(async ({ sql, url }) => {
    const hash = randomHash();
    const key = await create(sql, "busy", ["read"], hash);
    await check(sql, [hash], at(0));
    // Every write of the row, counted by a trigger of this test's own database.
    await sql.unsafe(`
      create table public.key_writes (last_used_at timestamptz);
      create function public.count_key_write() returns trigger language plpgsql as $$
        begin insert into public.key_writes values (new.last_used_at); return new; end $$;
      create trigger count_key_write after update on app.api_keys
        for each row execute function public.count_key_write();`);
    const pools = Array.from({ length: 10 }, () => connect(url, { max: 1 }));
    try {
      // All past the minute: each call may see the row stale, yet one write must be all.
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => check(pools[i % 10], [hash], at(90 + i / 100))),
      );
      assert.ok(results.every((rows) => rows.length === 1 && rows[0].id === key.id));
      const writes = await sql<
        { last_used_at: Date }[]
      >`select last_used_at from public.key_writes`;
      assert.equal(writes.length, 1, JSON.stringify(writes));
      const [row] = await sql<{ last_used_at: Date }[]>`
        select last_used_at from app.api_keys where id = ${key.id}`;
      assert.equal(row.last_used_at.getTime(), writes[0].last_used_at.getTime());
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });
});
