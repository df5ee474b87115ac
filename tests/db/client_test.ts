// The app's PostgreSQL client (db/client.ts) around postgres.js.
import assert from "node:assert/strict";
import { connect, isTransient, withoutLeadingHoles } from "../../db/client.ts";
import { survivePoolFault } from "../../utils/errors.ts";
import { withDatabase } from "../helpers/db.ts";

// As main.ts does: postgres.js may leave an internal promise rejected when a connection dies.
globalThis.addEventListener("unhandledrejection", survivePoolFault);

Deno.test("after a connection dies in the middle of a result, the next query's rows start at index 0", async () => {
  await withDatabase(async (db) => {
    const sql = connect(db.url, { max: 1 });
    try {
      for (let round = 0; round < 3; round++) {
        // The backend sends a few rows, then ends itself before the result is complete.
        const dying = await sql`
          select x, case when x = 3 then pg_terminate_backend(pg_backend_pid()) end as ended
            from generate_series(1, 5) x`.then(() => null, (error) => error);
        assert.ok(isTransient(dying), `the dying query failed as transient: ${dying}`);
        // The pool reconnects. The first query may still fail, as transient (postgres.js reports
        // the dead connection's error once); every result must start at index 0.
        let answered = 0;
        for (let attempt = 0; attempt < 3; attempt++) {
          const outcome = await sql<{ one: number }[]>`select 1 as one`.then(
            (rows) => ({ rows }),
            (error) => ({ error }),
          );
          if ("error" in outcome) {
            assert.ok(isTransient(outcome.error), String(outcome.error));
            continue;
          }
          assert.equal(outcome.rows.length, 1, `rows: ${JSON.stringify(outcome.rows)}`);
          assert.deepEqual({ ...outcome.rows[0] }, { one: 1 });
          answered++;
        }
        assert.ok(answered >= 2, `${answered} of 3 queries answered after the reconnect`);
      }
    } finally {
      await sql.end();
    }
  });
});

Deno.test("withoutLeadingHoles moves rows back to the start and leaves whole results alone", () => {
  const sparse: unknown[] = [];
  sparse[3] = { one: 1 };
  sparse[4] = { one: 2 };
  assert.deepEqual(withoutLeadingHoles(sparse), [{ one: 1 }, { one: 2 }]);
  const empty: unknown[] = [];
  empty.length = 3;
  assert.deepEqual(withoutLeadingHoles(empty), []);
  const whole = [{ one: 1 }, undefined];
  assert.equal(withoutLeadingHoles(whole), whole);
  assert.deepEqual(whole, [{ one: 1 }, undefined]);
});
