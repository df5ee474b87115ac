// client/schema.ts is what `deno task client:generate` would write now: a route or schema change
// that was not followed by the generator fails here.
import assert from "node:assert/strict";
import { generateSchema, SCHEMA_FILE } from "../../client/generate.ts";

Deno.test("client/schema.ts is up to date with the /api/v1 document", async () => {
  const committed = await Deno.readTextFile(SCHEMA_FILE);
  const generated = await generateSchema();
  assert.ok(generated.includes('"/api/v1/customers/{externalId}/consume"'));
  assert.ok(
    committed === generated,
    "client/schema.ts is stale: run `deno task client:generate` and commit the result",
  );
});
