// /admin (only for verified ADMIN_EMAILS accounts; everyone else gets 404): users with search,
// email verification, balance and plan; a user's ledger and a credit adjustment with a required
// reason; the webhook inbox with failed events and a replay button; the daily runs; a button to
// run the daily job now. Every action is a plain form (works without JavaScript) that redirects
// back; the message it leaves is kept by the server for the session (app._set_flash) and shown
// once by the next admin page, never taken from the URL.
import { Hono } from "hono";
import { DataTable } from "../../components/DataTable.tsx";
import { formatDate, formatDateTime, userLabel } from "../../components/format.ts";
import { requireAdmin } from "../../middlewares/admin.ts";
import { currentUser, requirePageUser } from "../../middlewares/session.ts";
import type { AppEnv } from "../../utils/app_env.ts";
import { page } from "../../utils/render.tsx";
import { ReplayParams } from "../../utils/schemas.ts";
import { viewerOf } from "../_helpers.ts";
import { Flash, type FlashData, sessionHash } from "./_shared.tsx";

type AdminUser = {
  id: string;
  email: string | null;
  externalId: string | null;
  emailVerifiedAt: string | null;
  createdAt: string;
  balance: number;
  plan: string;
};
type DailyRunError = { range: [string, string]; users: number; error: string };
type DailyRun = {
  id: number;
  runAt: string;
  trigger: string;
  status: "running" | "interrupted" | "done" | "degraded" | "failed" | "skipped";
  expired: number | null;
  granted: number | null;
  durationMs: number | null;
  finishedAt: string | null;
  users: number | null;
  usersDone: number;
  batchesDone: number;
  failedBatches: number;
  failedUsers: number;
  errors: DailyRunError[];
  note: string | null;
  resumedFrom: number | null;
  batchSize: number | null;
};
export type InboxEvent = {
  provider: string;
  eventId: string;
  type: string;
  status: string;
  error: string | null;
  attempts: number;
  receivedAt: string;
};
type AdminData = {
  balance: number;
  users: AdminUser[];
  runs: DailyRun[];
  inbox: InboxEvent[];
  flash: FlashData | null;
};
function Verification({ at }: { at: string | null }) {
  return at
    ? (
      <>
        verified <time dateTime={at}>{formatDate(at)}</time>
      </>
    )
    : <>not verified</>;
}

function UsersSection({ users, query }: { users: AdminUser[]; query: string }) {
  return (
    <section aria-labelledby="users-title">
      <h2 id="users-title">Users</h2>
      <form method="get" action="/admin" role="search">
        <fieldset role="group">
          <input
            type="search"
            name="q"
            value={query}
            aria-label="Search users by email or customer id"
            placeholder="Search by email or customer id"
          />
          <button type="submit">Search</button>
        </fieldset>
      </form>
      <DataTable
        id="users"
        columns={[
          { label: "Email" },
          { label: "Email verified" },
          { label: "Plan" },
          { label: "Balance", numeric: true },
          { label: "Signed up" },
          { label: "Customer id" },
        ]}
      >
        {users.map((user) => (
          <tr key={user.id}>
            <td>
              <a href={`/admin/users/${user.id}`}>{userLabel(user)}</a>
            </td>
            <td>
              <Verification at={user.emailVerifiedAt} />
            </td>
            <td>{user.plan}</td>
            <td class="number">{user.balance}</td>
            <td>{formatDateTime(user.createdAt)}</td>
            <td>{user.externalId === null ? "" : <code>{user.externalId}</code>}</td>
          </tr>
        ))}
      </DataTable>
      {users.length === 0 && <p>No user matches.</p>}
    </section>
  );
}

function InboxSection({ inbox }: { inbox: InboxEvent[] }) {
  return (
    <section aria-labelledby="inbox-title">
      <h2 id="inbox-title">Webhook inbox: failed events</h2>
      {inbox.length === 0 ? <p>No failed events.</p> : (
        <DataTable
          id="inbox"
          columns={[
            { label: "Received" },
            { label: "Event" },
            { label: "Error" },
            { label: "Action" },
          ]}
        >
          {inbox.map((event) => (
            <tr key={`${event.provider}:${event.eventId}`} data-event={event.eventId}>
              <td>{formatDateTime(event.receivedAt)}</td>
              <td>
                {event.provider} {event.type}
                <br />
                <small>
                  <code>{event.eventId}</code> · {event.attempts} attempt(s)
                </small>
              </td>
              <td>{event.error}</td>
              <td>
                <form
                  method="post"
                  action={`/admin/events/${event.provider}/${
                    encodeURIComponent(event.eventId)
                  }/replay`}
                  class="inline"
                >
                  <button type="submit" aria-label={`Replay event ${event.eventId}`}>
                    Replay
                  </button>
                </form>
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}

/** A run's batches and what went wrong, folded away: most runs have nothing to show. */
function RunDetails({ run }: { run: DailyRun }) {
  const lines: string[] = [];
  if (run.batchSize !== null) {
    lines.push(`${run.batchesDone} batches of up to ${run.batchSize} users`);
  }
  if (run.resumedFrom !== null) lines.push(`continues run ${run.resumedFrom}`);
  if (run.note) lines.push(run.note);
  if (lines.length === 0 && run.errors.length === 0) return null;
  return (
    <details>
      <summary>{run.errors.length === 0 ? "details" : `${run.errors.length} errors`}</summary>
      {lines.map((line) => <p key={line}>{line}</p>)}
      {run.errors.length > 0 && (
        <ul>
          {run.errors.map((error) => (
            <li key={error.range.join()}>
              users <code>{error.range[0]}</code> to <code>{error.range[1]}</code> ({error.users}):
              {" "}
              {error.error}
            </li>
          ))}
        </ul>
      )}
    </details>
  );
}

function RunsSection({ runs }: { runs: DailyRun[] }) {
  return (
    <section aria-labelledby="runs-title">
      <h2 id="runs-title">Daily runs</h2>
      <form method="post" action="/admin/run-daily">
        <button type="submit" class="secondary">Run the daily job now</button>
      </form>
      {runs.length === 0 ? <p>The daily job has not run yet.</p> : (
        <DataTable
          id="runs"
          columns={[
            { label: "Started" },
            { label: "By" },
            { label: "Status" },
            { label: "Users done", numeric: true },
            { label: "Batches", numeric: true },
            { label: "Failed batches", numeric: true },
            { label: "Expired", numeric: true },
            { label: "Granted", numeric: true },
            { label: "Duration", numeric: true },
            { label: "Details" },
          ]}
        >
          {runs.map((run) => (
            <tr key={run.id} data-status={run.status}>
              <td>{formatDateTime(run.runAt)}</td>
              <td>{run.trigger}</td>
              <td>{run.status}</td>
              <td class="number">
                {run.users === null ? "" : `${run.usersDone} of ${run.users}`}
              </td>
              <td class="number">{run.batchesDone}</td>
              <td class="number">
                {run.failedBatches === 0 ? "0" : `${run.failedBatches} (${run.failedUsers} users)`}
              </td>
              <td class="number">{run.expired ?? ""}</td>
              <td class="number">{run.granted ?? ""}</td>
              <td class="number">{run.durationMs === null ? "" : `${run.durationMs} ms`}</td>
              <td>
                <RunDetails run={run} />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}

/** GET /admin, and the two actions of that page (the daily job, a webhook replay). */
export const admin = new Hono<AppEnv>();
admin.use(requirePageUser, requireAdmin);

admin.get("/", async (c) => {
  const query = (c.req.query("q") ?? "").slice(0, 200);
  const [row] = await c.var.sql<{ page: AdminData }[]>`
    select app.page_admin(${currentUser(c).id}, ${await sessionHash(c)}, ${query}) as page`;
  return page(c, {
    title: "Admin",
    viewer: viewerOf(c, row.page.balance),
    children: (
      <>
        <h1>Admin</h1>
        <Flash flash={row.page.flash} />
        <p>
          <a href="/admin/api-keys">API keys</a> of the server-to-server API
        </p>
        <UsersSection users={row.page.users} query={query} />
        <InboxSection inbox={row.page.inbox} />
        <RunsSection runs={row.page.runs} />
      </>
    ),
  });
});

admin.post("/run-daily", async (c) => {
  // Two calls: the run is a procedure that commits per batch, so its message cannot be written
  // in the run's transaction.
  const [run] = await c.var.sql<{ run_id: number }[]>`call credits.run_daily(now(), 'admin')`;
  await c.var.sql`
    select app.admin_form_run_daily(${currentUser(c).id}, ${await sessionHash(c)}, ${run.run_id})`;
  return c.redirect("/admin", 303);
});

admin.post("/events/:provider/:eventId/replay", async (c) => {
  const params = ReplayParams.parse({
    provider: c.req.param("provider"),
    eventId: c.req.param("eventId"),
  });
  await c.var.sql`
    select app.admin_form_replay(${currentUser(c).id}, ${await sessionHash(c)},
                                 ${params.provider}, ${params.eventId})`;
  return c.redirect("/admin", 303);
});
