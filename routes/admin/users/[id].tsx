// GET /admin/users/:id: one user's balance, plan, email verification and ledger, with the credit
// adjustment form (POST /admin/users/:id/adjust, a required reason). Admins only (404 else).
import { type Context, Hono } from "hono";
import { z } from "zod";
import { Field } from "../../../components/Field.tsx";
import { formatCredits, formatDateTime, userLabel } from "../../../components/format.ts";
import { LedgerTable } from "../../../components/LedgerTable.tsx";
import type { Me, TransactionPage } from "../../../components/types.ts";
import { requireAdmin } from "../../../middlewares/admin.ts";
import { currentUser, requirePageUser } from "../../../middlewares/session.ts";
import type { AppEnv } from "../../../utils/app_env.ts";
import { HttpError } from "../../../utils/errors.ts";
import { page } from "../../../utils/render.tsx";
import { formFields, viewerOf } from "../../_helpers.ts";
import { Flash, type FlashData, sessionHash } from "../_shared.tsx";

type AdminUserData = {
  balance: number;
  user: Me | null;
  externalId: string | null;
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
  const { user, ledger, externalId } = row.page;
  if (!user || !ledger) throw new HttpError(404, "not_found", "no such user");
  const label = userLabel({ email: user.email, externalId });
  return page(c, {
    title: `Admin: ${label}`,
    viewer: viewerOf(c, row.page.balance),
    status: options.status,
    children: (
      <>
        <nav aria-label="Breadcrumb">
          <ul>
            <li>
              <a href="/admin">Admin</a>
            </li>
            <li>{label}</li>
          </ul>
        </nav>
        <h1>{label}</h1>
        {externalId !== null && (
          <p id="external-id">
            API customer <code>{externalId}</code>
          </p>
        )}
        <Flash flash={row.page.flash} />
        <p id="email-verified">
          {user.email === null
            ? <>No email: an API customer created without one.</>
            : row.page.emailVerifiedAt
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

/** Mounted at /admin/users. */
export const adminUser = new Hono<AppEnv>();
adminUser.use(requirePageUser, requireAdmin);

adminUser.get("/:id", (c) => userPage(c));

adminUser.post("/:id/adjust", async (c) => {
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
