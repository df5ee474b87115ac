// page_dashboard_ms: the median time to serve /dashboard (session lookup, the page's one SQL
// call, server-side rendering) for a user with 10,000 ledger rows. Target: under 20 ms.
import { createAccount } from "../../utils/accounts.ts";
import { createApp } from "../../app.ts";
import { parseConfig } from "../../utils/config.ts";
import { SESSION_COOKIE } from "../../utils/session_token.ts";
import { type Bench, note, percentile, report } from "./harness.ts";

const LEDGER_ROWS = 10_000;
const WARM_UP = 10;
const SAMPLES = 100;

export const pageBenches: Bench[] = [{
  name: "page_dashboard_ms",
  async run(context) {
    const db = await context.freshDatabase({ max: 4 });
    try {
      const account = await createAccount(db.sql, {
        email: "bench@test.local",
        password: "correct horse 1",
      }, { address: null, limitPerHour: 0 });
      // Sign-up wrote 2 entries; one large grant and the usages, spread over the last 45 days so
      // that the chart has data, make the rest.
      await db.sql`select credits.grant(${account.userId}, 1000000, 'bonus', 'bench:page')`;
      await db.sql`
        select credits.consume(${account.userId}, 1 + i % 5, 'bench:' || i, 'bench usage',
                               now() - make_interval(mins => (${LEDGER_ROWS} - i) * 6))
          from generate_series(1, ${LEDGER_ROWS - 3}) i`;
      // As autovacuum would have by then: the chart's index-only scan needs the visibility map.
      await db.sql`vacuum analyze credits.ledger`;
      const [{ rows }] = await db.sql<{ rows: number }[]>`
        select count(*)::int as rows from credits.ledger where user_id = ${account.userId}`;
      note(`page_dashboard_ms: ${rows} ledger rows for the user`);

      const config = parseConfig({ DATABASE_URL: db.url, SCHEDULER: "off" });
      const app = createApp({ sql: db.sql, config });
      const headers = { cookie: `${SESSION_COOKIE}=${account.userId}.${account.token}` };
      const times: number[] = [];
      for (let i = 0; i < WARM_UP + SAMPLES; i++) {
        const started = performance.now();
        const response = await app.request("/dashboard", { headers });
        const html = await response.text();
        const elapsed = performance.now() - started;
        if (response.status !== 200 || !html.includes('id="transactions"')) {
          throw new Error(`/dashboard answered ${response.status}`);
        }
        if (i >= WARM_UP) times.push(elapsed);
      }
      const sqlTimes: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const started = performance.now();
        await db.sql`select app.page_dashboard(${account.userId}) as page`;
        sqlTimes.push(performance.now() - started);
      }
      sqlTimes.sort((a, b) => a - b);
      times.sort((a, b) => a - b);
      report("page_dashboard_ms", percentile(times, 0.5), "ms");
      note(
        `page_dashboard_ms: p95 ${percentile(times, 0.95).toFixed(1)} ms; ` +
          `the SQL call alone: p50 ${percentile(sqlTimes, 0.5).toFixed(1)} ms`,
      );
    } finally {
      await db.drop();
    }
  },
}];
