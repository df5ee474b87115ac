// Coalescing: calls that arrive while the database is busy with earlier ones are answered by one
// call for all of them. Used for the API key check (middlewares/api_key.ts) and meant for any
// lookup or write that has a set-based SQL form taking many inputs at once.
//
// The rule: while fewer than maxInFlight calls of `run` are running, an input starts a call of its
// own at once (no timer: an idle server adds no latency). Otherwise it waits in a queue, and each
// call that finishes starts the next call with up to maxBatch queued inputs, oldest first. So under
// load the batches grow by themselves to what arrived during one call, and never more than
// maxInFlight calls (database connections) are used.

export type CoalescerOptions = {
  /** The most inputs one call of `run` gets. */
  maxBatch: number;
  /** The most calls of `run` running at once. */
  maxInFlight: number;
};

type Waiting<In, Out> = {
  input: In;
  resolve: (output: Out) => void;
  reject: (error: unknown) => void;
};

/**
 * Wraps `run`, which answers a batch of inputs with one output per input in the same order, into a
 * function of one input. Each caller gets its own output; when `run` rejects (or answers a wrong
 * number of outputs), every caller of that batch is rejected with that error, and other batches
 * are unaffected.
 */
export function createCoalescer<In, Out>(
  run: (inputs: In[]) => Promise<Out[]>,
  options: CoalescerOptions,
): (input: In) => Promise<Out> {
  for (const [name, value] of Object.entries(options)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
  }
  const queue: Waiting<In, Out>[] = [];
  let inFlight = 0;

  const start = (batch: Waiting<In, Out>[]) => {
    inFlight++;
    let outputs: Promise<Out[]>;
    try {
      outputs = Promise.resolve(run(batch.map((waiting) => waiting.input)));
    } catch (error) {
      outputs = Promise.reject(error);
    }
    outputs.then(
      (results) => {
        if (!Array.isArray(results) || results.length !== batch.length) {
          const error = new Error(
            `coalescer: run answered ${
              Array.isArray(results) ? results.length : "no array of"
            } outputs for ${batch.length} inputs`,
          );
          for (const waiting of batch) waiting.reject(error);
          return;
        }
        batch.forEach((waiting, index) => waiting.resolve(results[index]));
      },
      (error) => {
        for (const waiting of batch) waiting.reject(error);
      },
    ).finally(() => {
      inFlight--;
      while (inFlight < options.maxInFlight && queue.length > 0) {
        start(queue.splice(0, options.maxBatch));
      }
    });
  };

  return (input) =>
    new Promise<Out>((resolve, reject) => {
      const waiting = { input, resolve, reject };
      if (inFlight < options.maxInFlight) start([waiting]);
      else queue.push(waiting);
    });
}
