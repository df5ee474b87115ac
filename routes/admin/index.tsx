// /admin (only for verified ADMIN_EMAILS accounts; everyone else gets 404): users with search,
// email verification, balance and plan; a user's ledger and a credit adjustment with a required
// reason; the webhook inbox with failed events and a replay button; the daily runs; a button to
// run the daily job now. Every action is a plain form (works without JavaScript) that redirects
// back; the message it leaves is kept by the server for the session (app._set_flash) and shown
// once by the next admin page, never taken from the URL.
import { type Context, Hono } from "hono";
import { z } from "zod";
import { DataTable } from "../../components/DataTable.tsx";
import { Field } from "../../components/Field.tsx";
import {
  formatCredits,
  formatDate,
  formatDateTime,
  formatSigned,
} from "../../components/format.ts";
import { LedgerTable } from "../../components/LedgerTable.tsx";
import type { Me, TransactionPage } from "../../components/types.ts";
import type { AppEnv } from "../../utils/app_env.ts";
import { HttpError } from "../../utils/errors.ts";
import { page } from "../../utils/render.tsx";
import { currentUser, sessionKey } from "../../middlewares/session.ts";
import { ReplayParams } from "../api/admin.ts";
import { formFields, requireAdmin, requirePageUser, viewerOf } from "../_helpers.ts";

type AdminUser = {
  id: string;
  email: string;
  emailVerifiedAt: string | null;
  createdAt: string;
  balance: number;
  plan: string;
};
type DailyRun = {
  id: number;
  runAt: string;
  trigger: string;
  expired: number | null;
  granted: number | null;
  durationMs: number | null;
  finishedAt: string | null;
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
/** What an admin action did, as the server keeps it for the next page (sql/ui.sql). */
type FlashData =
  | { kind: "adjusted"; amount: number; balance: number }
  | { kind: "daily_run"; expired: number; granted: number; durationMs: number }
  | { kind: "replayed"; eventId: string; result: string };
type AdminData = {
  balance: number;
  users: AdminUser[];
  runs: DailyRun[];
  inbox: InboxEvent[];
  flash: FlashData | null;
};
type AdminUserData = {
  balance: number;
  user: Me | null;
  emailVerifiedAt: string | null;
  ledger: TransactionPage | null;
  flash: FlashData | null;
};

const Uuid = z.uuid("not a user id");
const Cursor = z.string().regex(/^[0-9]{1,18}$/).optional();

const AdjustForm = z.object({
  // Digits only, with an optional sign: Number() would also take "0x10", "1e3" or "12.0".
  amount: z.string().trim().regex(/^[+-]?[0-9]+$/, "a whole number of credits, digits only")
    .transform(Number).refine((n) => n !== 0, { message: "must not be zero" })
    .refine((n) => Math.abs(n) <= 1_000_000_000, { message: "too large" }),
  reason: z.string().trim().min(3, "say why (at least 3 characters)").max(500),
  key: z.uuid(),
});

function flashText(flash: FlashData): string {
  switch (flash.kind) {
    case "adjusted":
      return `Adjusted by ${formatSigned(flash.amount)}: the balance is now ${
        formatCredits(Number(flash.balance))
      }.`;
    case "daily_run":
      return `Daily job done: ${flash.expired} grants expired, ${flash.granted} granted, in ${flash.durationMs} ms.`;
    case "replayed":
      return `Replayed ${flash.eventId}: ${flash.result}.`;
  }
}

function Flash({ flash }: { flash: FlashData | null }) {
  return flash
    ? (
      <p role="status" id="flash">
        <mark>{flashText(flash)}</mark>
      </p>
    )
    : null;
}

function Verification({ at }: { at: string | null }) {
  return at
    ? (
      <>
        verified <time dateTime={at}>{formatDate(at)}</time>
      </>
    )
    : <>not verified</>;
}

/** The hash of the session's token: the admin's messages are kept per session. */
async function sessionHash(c: Context<AppEnv>): Promise<Uint8Array> {
  const key = await sessionKey(c);
  if (!key) throw new HttpError(401, "unauthorized", "sign in first");
  return key.tokenHash;
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
            aria-label="Search users by email"
            placeholder="Search by email"
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
        ]}
      >
        {users.map((user) => (
          <tr key={user.id}>
            <td>
              <a href={`/admin/users/${user.id}`}>{user.email}</a>
            </td>
            <td>
              <Verification at={user.emailVerifiedAt} />
            </td>
            <td>{user.plan}</td>
            <td class="number">{user.balance}</td>
            <td>{formatDateTime(user.createdAt)}</td>
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
            { label: "Expired", numeric: true },
            { label: "Granted", numeric: true },
            { label: "Duration", numeric: true },
          ]}
        >
          {runs.map((run) => (
            <tr key={run.id}>
              <td>{formatDateTime(run.runAt)}</td>
              <td>{run.trigger}</td>
              <td class="number">{run.expired ?? "running"}</td>
              <td class="number">{run.granted ?? ""}</td>
              <td class="number">{run.durationMs === null ? "" : `${run.durationMs} ms`}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}

function AdjustSection(
  { userId, errors, values }: {
    userId: string;
    errors: Partial<Record<"amount" | "reason", string>>;
    values: { amount: string; reason: string };
  },
) {
  return (
    <section aria-labelledby="adjust-title">
      <h2 id="adjust-title">Adjust credits</h2>
      <form method="post" action={`/admin/users/${userId}/adjust`}>
        <input type="hidden" name="key" value={crypto.randomUUID()} />
        <Field
          name="amount"
          label="Credits (negative to remove)"
          type="number"
          value={values.amount}
          error={errors.amount}
          required
        />
        <Field
          name="reason"
          label="Reason (shown in the user's history)"
          value={values.reason}
          error={errors.reason}
          required
        />
        <button type="submit">Adjust</button>
      </form>
    </section>
  );
}

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
        <UsersSection users={row.page.users} query={query} />
        <InboxSection inbox={row.page.inbox} />
        <RunsSection runs={row.page.runs} />
      </>
    ),
  });
});

async function userPage(
  c: Context<AppEnv>,
  options: {
    errors?: Partial<Record<"amount" | "reason", string>>;
    values?: { amount: string; reason: string };
    status?: 200 | 400 | 402 | 409;
  } = {},
) {
  const userId = Uuid.safeParse(c.req.param("id") ?? "");
  if (!userId.success) throw new HttpError(404, "not_found", "no such user");
  const cursor = Cursor.parse(c.req.query("cursor"));
  const [row] = await c.var.sql<{ page: AdminUserData }[]>`
    select app.page_admin_user(${currentUser(c).id}, ${await sessionHash(c)}, ${userId.data},
                               ${cursor ?? null}) as page`;
  const { user, ledger } = row.page;
  if (!user || !ledger) throw new HttpError(404, "not_found", "no such user");
  return page(c, {
    title: `Admin: ${user.email}`,
    viewer: viewerOf(c, row.page.balance),
    status: options.status,
    children: (
      <>
        <nav aria-label="Breadcrumb">
          <ul>
            <li>
              <a href="/admin">Admin</a>
            </li>
            <li>{user.email}</li>
          </ul>
        </nav>
        <h1>{user.email}</h1>
        <Flash flash={row.page.flash} />
        <p id="email-verified">
          {row.page.emailVerifiedAt
            ? (
              <>
                Email verified on{" "}
                <time dateTime={row.page.emailVerifiedAt}>
                  {formatDateTime(row.page.emailVerifiedAt)}
                </time>.
              </>
            )
            : (
              <>
                Email not verified: this account is never an admin, and no payment is matched to it
                by email alone, until it is (<code>deno task users verify {user.email}</code>{" "}
                on the server).
              </>
            )}
        </p>
        <p>
          Balance <strong id="user-balance">{formatCredits(user.balance)}</strong>; plan{" "}
          {user.plan.id} ({user.plan.status}).
        </p>
        <AdjustSection
          userId={user.id}
          errors={options.errors ?? {}}
          values={options.values ?? { amount: "", reason: "" }}
        />
        <section aria-labelledby="ledger-title">
          <h2 id="ledger-title">Ledger</h2>
          <LedgerTable id="ledger" items={ledger.items} />
          {ledger.nextCursor && (
            <a href={`/admin/users/${user.id}?cursor=${ledger.nextCursor}`}>Older entries</a>
          )}
        </section>
      </>
    ),
  });
}

admin.get("/users/:id", (c) => userPage(c));

admin.post("/users/:id/adjust", async (c) => {
  const userId = Uuid.safeParse(c.req.param("id"));
  if (!userId.success) throw new HttpError(404, "not_found", "no such user");
  const fields = await formFields(c);
  const values = { amount: fields.amount ?? "", reason: fields.reason ?? "" };
  const parsed = AdjustForm.safeParse(fields);
  if (!parsed.success) {
    const errors: Partial<Record<"amount" | "reason", string>> = {};
    for (const issue of parsed.error.issues) {
      const field = issue.path[0];
      if (field === "amount" || field === "reason") errors[field] ??= issue.message;
    }
    return userPage(c, { errors, values, status: 400 });
  }
  try {
    await c.var.sql`
      select app.admin_form_adjust(${currentUser(c).id}, ${await sessionHash(c)}, ${userId.data},
                                   ${parsed.data.amount}, ${parsed.data.reason},
                                   ${parsed.data.key})`;
    return c.redirect(`/admin/users/${userId.data}`, 303);
  } catch (error) {
    const { code, detail } = error as { code?: string; detail?: string };
    if (code === "CR001") {
      return userPage(c, {
        errors: { amount: "The user does not have that many credits to remove." },
        values,
        status: 402,
      });
    }
    if (code === "CR002") {
      // The same form (its key) sent again with another amount: the first one stands.
      return userPage(c, {
        errors: {
          amount: `This form was already sent with ${
            detail ?? "another amount"
          }; nothing changed. Send the new form below to make another adjustment.`,
        },
        values,
        status: 409,
      });
    }
    throw error;
  }
});

admin.post("/run-daily", async (c) => {
  await c.var.sql`select app.admin_form_run_daily(${currentUser(c).id}, ${await sessionHash(c)})`;
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
