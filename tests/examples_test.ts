// The runnable SQL examples (examples/*.sql): each runs on a fresh database, statement by
// statement on one connection, and its rendered output must equal the checked examples/*.out.
// TALLY_EXAMPLES_UPDATE=1 rewrites the .out files instead (then read the diff before committing).
// The output format is described in examples/README.md; psql is not needed (embedded mode has
// none), so this file renders results itself.
import assert from "node:assert/strict";
import type { Sql } from "../db/client.ts";
import { connect } from "../db/client.ts";
import { withDatabase } from "./helpers/db.ts";

const EXAMPLES = new URL("../examples/", import.meta.url);
const UPDATE = Deno.env.get("TALLY_EXAMPLES_UPDATE") === "1";

/**
 * The statements of a script, each with the comment and blank lines before it. A statement ends
 * at a line ending in `;` outside a dollar-quoted body (`$$ ... $$`).
 */
export function splitStatements(script: string): { lead: string; statement: string }[] {
  const out: { lead: string; statement: string }[] = [];
  let lead: string[] = [];
  let body: string[] = [];
  let inDollar = false;
  for (const line of script.split("\n")) {
    if (body.length === 0 && !inDollar && (line.trim() === "" || line.trim().startsWith("--"))) {
      lead.push(line);
      continue;
    }
    body.push(line);
    if ((line.match(/\$\$/g) ?? []).length % 2 === 1) inDollar = !inDollar;
    if (!inDollar && line.trimEnd().endsWith(";")) {
      out.push({ lead: lead.join("\n").trim(), statement: body.join("\n") });
      lead = [];
      body = [];
    }
  }
  if (body.some((line) => line.trim() !== "")) {
    throw new Error(`a statement without its closing ";": ${body.join("\n")}`);
  }
  return out;
}

/** A result as psql's aligned format: header, rule, rows (text left, numbers right), count. */
export function renderTable(columns: string[], rows: (string | null)[][]): string {
  const numeric = columns.map((_, i) =>
    rows.length > 0 && rows.every((r) => r[i] === null || /^-?\d+(\.\d+)?$/.test(r[i]!))
  );
  const widths = columns.map((name, i) =>
    Math.max(name.length, ...rows.map((r) => (r[i] ?? "").length))
  );
  const cell = (value: string, i: number) =>
    numeric[i] ? value.padStart(widths[i]) : value.padEnd(widths[i]);
  const line = (values: string[]) => ` ${values.map(cell).join(" | ")}`.trimEnd();
  const header = ` ${columns.map((name, i) => name.padEnd(widths[i])).join(" | ")}`.trimEnd();
  return [
    header,
    widths.map((w) => "-".repeat(w + 2)).join("+"),
    ...rows.map((r) => line(r.map((v) => v ?? ""))),
    `(${rows.length} ${rows.length === 1 ? "row" : "rows"})`,
  ].join("\n");
}

type RawResult = (Uint8Array | null)[][] & {
  columns?: { name: string }[];
  command?: string;
  count?: number | null;
};

/** Runs one statement and renders its answer: a table, the command tag, or the error. */
async function runStatement(sql: Sql, statement: string): Promise<string> {
  try {
    const result = await sql.unsafe(statement).raw() as unknown as RawResult;
    const columns = (result.columns ?? []).map((c) => c.name);
    if (columns.length === 0) {
      return `${result.command ?? "OK"}${result.count ? ` ${result.count}` : ""}`;
    }
    const decoder = new TextDecoder();
    const rows = [...result].map((row) => row.map((v) => (v === null ? null : decoder.decode(v))));
    return renderTable(columns, rows);
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (typeof e.code !== "string" || !/^[0-9A-Z]{5}$/.test(e.code)) throw error;
    return `ERROR:  ${e.message} (SQLSTATE ${e.code})`;
  }
}

/** The output of a script: each statement echoed as written, then its answer, then a blank line. */
export async function runExample(sql: Sql, script: string): Promise<string> {
  const parts: string[] = [];
  for (const { lead, statement } of splitStatements(script)) {
    if (lead !== "") parts.push(lead);
    parts.push(statement, await runStatement(sql, statement), "");
  }
  return parts.join("\n");
}

const scripts = [...Deno.readDirSync(EXAMPLES)]
  .filter((entry) => entry.isFile && entry.name.endsWith(".sql"))
  .map((entry) => entry.name)
  .sort();

Deno.test("the examples folder holds at least the credits walk", () => {
  assert.ok(scripts.includes("credits_walk.sql"), scripts.join(", "));
});

for (const name of scripts) {
  Deno.test(`examples/${name} gives examples/${name.replace(/\.sql$/, ".out")}`, async () => {
    const script = await Deno.readTextFile(new URL(name, EXAMPLES));
    const outFile = new URL(name.replace(/\.sql$/, ".out"), EXAMPLES);
    await withDatabase(async (db) => {
      // One connection: the script's session settings and temporary functions carry through.
      const sql = connect(db.url, { max: 1 });
      try {
        const output = await runExample(sql, script);
        if (UPDATE) {
          await Deno.writeTextFile(outFile, output);
          return;
        }
        const expected = await Deno.readTextFile(outFile).catch(() => "");
        assert.equal(
          output,
          expected,
          `rerun with TALLY_EXAMPLES_UPDATE=1 to rewrite examples/${
            name.replace(/\.sql$/, ".out")
          }`,
        );
      } finally {
        await sql.end();
      }
    });
  });
}

Deno.test("example output: statements split at ';' outside $$, tables aligned as psql's", () => {
  const parts = splitStatements(
    "-- a\nselect 1;\n\ncreate function f() returns int\nlanguage sql as $$\n  select 1;\n$$;\n",
  );
  assert.deepEqual(parts, [
    { lead: "-- a", statement: "select 1;" },
    {
      lead: "",
      statement: "create function f() returns int\nlanguage sql as $$\n  select 1;\n$$;",
    },
  ]);
  assert.equal(
    renderTable(["kind", "amount"], [["bonus", "100"], ["usage", "-30"], ["x", null]]),
    [
      " kind  | amount",
      "-------+--------",
      " bonus |    100",
      " usage |    -30",
      " x     |",
      "(3 rows)",
    ].join("\n"),
  );
});
