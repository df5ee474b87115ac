// utils/coalescer.ts: an idle coalescer calls at once; a busy one queues and batches; each caller
// gets its own output, in order; a failed batch rejects its callers only; maxInFlight and maxBatch
// hold.
import assert from "node:assert/strict";
import { createCoalescer } from "../../utils/coalescer.ts";

/** A promise with its resolve and reject at hand. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

/** A run whose calls are recorded and answered by hand (answer(i) doubles call i's inputs). */
function manualRun() {
  const calls: { inputs: number[]; done: ReturnType<typeof deferred<number[]>> }[] = [];
  const run = (inputs: number[]) => {
    const done = deferred<number[]>();
    calls.push({ inputs, done });
    return done.promise;
  };
  const answer = (index: number) =>
    calls[index].done.resolve(calls[index].inputs.map((n) => n * 2));
  return { calls, run, answer };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("coalescer: idle, an input starts its call at once, without waiting for a timer", async () => {
  const { calls, run, answer } = manualRun();
  const check = createCoalescer(run, { maxBatch: 10, maxInFlight: 2 });
  const result = check(21);
  // Synchronously: no timer, no microtask in between.
  assert.deepEqual(calls.map((c) => c.inputs), [[21]]);
  answer(0);
  assert.equal(await result, 42);
});

Deno.test("coalescer: busy, inputs queue and the next call to finish starts one batch of them", async () => {
  const { calls, run, answer } = manualRun();
  const check = createCoalescer(run, { maxBatch: 3, maxInFlight: 2 });
  const results = [1, 2, 3, 4, 5, 6, 7].map((n) => check(n));
  // Two calls run (maxInFlight), the other five wait.
  assert.deepEqual(calls.map((c) => c.inputs), [[1], [2]]);
  answer(1);
  await tick();
  // The finished call started one batch of at most maxBatch, oldest first.
  assert.deepEqual(calls.map((c) => c.inputs), [[1], [2], [3, 4, 5]]);
  answer(0);
  await tick();
  assert.deepEqual(calls.map((c) => c.inputs), [[1], [2], [3, 4, 5], [6, 7]]);
  answer(2);
  answer(3);
  // Each caller gets the output at its own position.
  assert.deepEqual(await Promise.all(results), [2, 4, 6, 8, 10, 12, 14]);
  // Idle again: the next input is a call of its own, at once.
  const next = check(50);
  assert.deepEqual(calls[4].inputs, [50]);
  answer(4);
  assert.equal(await next, 100);
});

Deno.test("coalescer: never more than maxInFlight calls at once, under a flood", async () => {
  let running = 0;
  let most = 0;
  let calls = 0;
  const check = createCoalescer(async (inputs: number[]) => {
    calls++;
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 3));
    running--;
    return inputs.map((n) => -n);
  }, { maxBatch: 25, maxInFlight: 3 });
  const inputs = Array.from({ length: 1000 }, (_, i) => i);
  const outputs = await Promise.all(inputs.map(async (n) => {
    if (n % 100 === 0) await tick(); // some arrive later, while batches run
    return await check(n);
  }));
  assert.deepEqual(outputs, inputs.map((n) => -n));
  assert.equal(most, 3);
  // 1000 inputs in batches of at most 25, plus the first few single calls.
  assert.ok(calls >= 40 && calls < 100, `${calls} calls`);
});

Deno.test("coalescer: a rejected batch rejects every caller in it with that error, and only them", async () => {
  const { calls, run, answer } = manualRun();
  const check = createCoalescer(run, { maxBatch: 10, maxInFlight: 1 });
  const first = check(1);
  const batch = [check(2), check(3)];
  const failure = new Error("database down");
  calls[0].done.reject(failure);
  await assert.rejects(first, (error) => error === failure);
  await tick();
  assert.deepEqual(calls[1].inputs, [2, 3]);
  answer(1);
  assert.deepEqual(await Promise.all(batch), [4, 6]);

  // A batch that fails after others queued: they still get their own call.
  const doomed = [check(7), check(8)];
  const queued = check(9);
  // 7 runs alone; 8 and 9 wait and go together.
  calls[2].done.reject(failure);
  await assert.rejects(doomed[0], (error) => error === failure);
  await tick();
  assert.deepEqual(calls[3].inputs, [8, 9]);
  calls[3].done.reject(new Error("second failure"));
  await assert.rejects(doomed[1], /second failure/);
  await assert.rejects(queued, /second failure/);
  // Recovered: the coalescer still works.
  const later = check(10);
  answer(4);
  assert.equal(await later, 20);
});

Deno.test("coalescer: a run that throws, or answers the wrong number of outputs, rejects its callers", async () => {
  const throwing = createCoalescer((_: number[]): Promise<number[]> => {
    throw new Error("thrown at once");
  }, { maxBatch: 5, maxInFlight: 1 });
  await assert.rejects(throwing(1), /thrown at once/);
  await assert.rejects(throwing(2), /thrown at once/); // the slot was given back

  const short = createCoalescer(
    (inputs: number[]) => Promise.resolve(inputs.slice(1)),
    { maxBatch: 5, maxInFlight: 1 },
  );
  await assert.rejects(short(1), /0 outputs for 1 inputs/);
});

Deno.test("coalescer: options must be positive integers", () => {
  const run = (inputs: number[]) => Promise.resolve(inputs);
  assert.throws(() => createCoalescer(run, { maxBatch: 0, maxInFlight: 1 }), RangeError);
  assert.throws(() => createCoalescer(run, { maxBatch: 1, maxInFlight: 1.5 }), RangeError);
});
