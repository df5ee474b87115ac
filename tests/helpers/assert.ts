// Assertions shared by the tests.
import assert from "node:assert/strict";
import { sqlState } from "../../db/client.ts";

/**
 * Asserts that `run` (a promise, or a function returning one) is rejected by PostgreSQL with
 * SQLSTATE `state`, and returns the error for further checks (its detail, its message).
 */
export async function assertSqlState(
  run: Promise<unknown> | (() => Promise<unknown>),
  state: string,
  message?: string,
): Promise<unknown> {
  let caught: unknown;
  await assert.rejects(run, (error: unknown) => {
    caught = error;
    const where = message ? `${message}: ` : "";
    assert.equal(
      sqlState(error),
      state,
      `${where}expected SQLSTATE ${state}, got: ${String(error)}`,
    );
    return true;
  });
  return caught;
}
