// The closed sets are defined once: the database's domains (migration 0006) hold exactly the
// values of utils/kinds.ts, credits.grant_kinds() the grant kinds, credits.kind_label() the
// labels, and the pages label a ledger kind with those same words.
import assert from "node:assert/strict";
import { kindLabel as pageKindLabel } from "../../components/format.ts";
import {
  EVENT_STATUSES,
  GRANT_KINDS,
  KIND_LABELS,
  kindLabel,
  LEDGER_KINDS,
  PAYMENT_KINDS,
  PROVIDERS,
  SUBSCRIPTION_INTERVALS,
} from "../../utils/kinds.ts";
import { withDatabase } from "../helpers/db.ts";

Deno.test("each domain of the database allows exactly the values of utils/kinds.ts", async () => {
  await withDatabase(async ({ sql }) => {
    const rows = await sql<{ domain: string; definition: string }[]>`
      select n.nspname || '.' || t.typname as domain, pg_get_constraintdef(c.oid) as definition
        from pg_constraint c
        join pg_type t on t.oid = c.contypid
        join pg_namespace n on n.oid = t.typnamespace
       where c.contype = 'c' and n.nspname in ('credits', 'billing')`;
    const values = Object.fromEntries(
      rows.map((row) => [
        row.domain,
        [...row.definition.matchAll(/'([^']*)'::text/g)].map((match) => match[1]),
      ]),
    );
    assert.deepEqual(values, {
      "credits.grant_kind": [...GRANT_KINDS],
      "credits.entry_kind": [...LEDGER_KINDS],
      "billing.provider": [...PROVIDERS],
      "billing.payment_kind": [...PAYMENT_KINDS],
      "billing.subscription_interval": [...SUBSCRIPTION_INTERVALS],
      "billing.event_status": [...EVENT_STATUSES],
    });
  });
});

Deno.test("credits.grant_kinds and credits.kind_label agree with utils/kinds.ts", async () => {
  await withDatabase(async ({ sql }) => {
    const [{ kinds }] = await sql<{ kinds: string[] }[]>`select credits.grant_kinds() as kinds`;
    assert.deepEqual(kinds, [...GRANT_KINDS]);
    const labels = await sql<{ kind: string; label: string }[]>`
      select k as kind, credits.kind_label(k) as label
        from unnest(${[...LEDGER_KINDS, "not_a_kind"]}::text[]) k`;
    assert.deepEqual(
      Object.fromEntries(labels.map(({ kind, label }) => [kind, label])),
      { ...KIND_LABELS, not_a_kind: "not_a_kind" },
    );
  });
});

Deno.test("the pages label every ledger kind with the database's words", () => {
  for (const kind of LEDGER_KINDS) assert.equal(pageKindLabel(kind), KIND_LABELS[kind], kind);
  assert.equal(pageKindLabel("not_a_kind"), kindLabel("not_a_kind"));
});
