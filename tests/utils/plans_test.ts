// The plans file's schema (utils/plans.ts) for the keys of section 8: features and
// lowBalanceCredits, read the way start-up reads the file (readPlansFile), errors naming the field.
import assert from "node:assert/strict";
import { PlansFileError, readPlansFile } from "../../utils/plans.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const repoPlans = () => JSON.parse(Deno.readTextFileSync(`${ROOT}plans.json`));

async function readAs(doc: unknown): Promise<Awaited<ReturnType<typeof readPlansFile>>> {
  const path = await Deno.makeTempFile({ prefix: "tally-plans-", suffix: ".json" });
  try {
    await Deno.writeTextFile(path, JSON.stringify(doc));
    return await readPlansFile(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("plans file: the repository's features and lowBalanceCredits are read as written", async () => {
  const plans = await readPlansFile(`${ROOT}plans.json`);
  assert.deepEqual(plans.features, [
    { id: "chat", name: "Chat message", credits: 1 },
    { id: "image", name: "Image generation", credits: 10 },
  ]);
  assert.equal(plans.lowBalanceCredits, 20);
});

Deno.test("plans file: both keys are optional", async () => {
  const doc = repoPlans();
  delete doc.features;
  delete doc.lowBalanceCredits;
  const plans = await readAs(doc);
  assert.deepEqual(plans.features, []);
  assert.equal(plans.lowBalanceCredits, undefined);
});

Deno.test("plans file: a bad feature or threshold stops start-up with the field named", async () => {
  const cases: [(doc: Record<string, unknown>) => void, RegExp][] = [
    [
      (doc) => (doc.features = [{ id: "chat", name: "Chat", credits: 0 }]),
      /field features\[0\]\.credits/,
    ],
    [
      (doc) => (doc.features = [{ id: "chat", name: "Chat", credits: 1.5 }]),
      /field features\[0\]\.credits/,
    ],
    [
      (doc) => (doc.features = [{ id: "chat", name: "Chat", credits: -1 }]),
      /field features\[0\]\.credits/,
    ],
    [(doc) => (doc.features = [{ id: "chat", credits: 1 }]), /field features\[0\]\.name/],
    [(doc) => (doc.features = [{ id: "chat", name: "", credits: 1 }]), /field features\[0\]\.name/],
    [
      (doc) => (doc.features = [{ id: "Chat!", name: "Chat", credits: 1 }]),
      /field features\[0\]\.id/,
    ],
    [
      (doc) => (doc.features = [{ id: "chat", name: "Chat", credits: 1, price: 3 }]),
      /field features\[0\]: .*price/,
    ],
    [
      (doc) => (doc.features = [
        { id: "chat", name: "Chat", credits: 1 },
        { id: "image", name: "Image", credits: 10 },
        { id: "chat", name: "Chat again", credits: 2 },
      ]),
      /field features\[2\]\.id: duplicate id chat/,
    ],
    [(doc) => (doc.features = { chat: 1 }), /field features/],
    [(doc) => (doc.lowBalanceCredits = -1), /field lowBalanceCredits/],
    [(doc) => (doc.lowBalanceCredits = 2.5), /field lowBalanceCredits/],
    [(doc) => (doc.lowBalanceCredits = "20"), /field lowBalanceCredits/],
  ];
  for (const [change, expected] of cases) {
    const doc = repoPlans();
    change(doc);
    await assert.rejects(readAs(doc), (error: unknown) => {
      assert.ok(error instanceof PlansFileError, String(error));
      assert.match(error.message, expected);
      return true;
    });
  }
  const zero = repoPlans();
  zero.lowBalanceCredits = 0;
  assert.equal((await readAs(zero)).lowBalanceCredits, 0);
});
