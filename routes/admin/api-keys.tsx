// /admin/api-keys (admins only, 404 for anyone else): the server-to-server API's keys with their
// prefix, scopes and use; a form that makes one and shows it once, in the answer to that form
// only (never in a redirect, a flash message or the database); a revoke button per key. Plain
// forms, as the other admin pages.
import { type Context, Hono } from "hono";
import { z } from "zod";
import { DataTable } from "../../components/DataTable.tsx";
import { Field } from "../../components/Field.tsx";
import { formatDateTime } from "../../components/format.ts";
import { requireAdmin } from "../../middlewares/admin.ts";
import { currentUser, requirePageUser } from "../../middlewares/session.ts";
import { ApiKeyName, createApiKey, type CreatedApiKey } from "../../utils/api_keys.ts";
import type { AppEnv } from "../../utils/app_env.ts";
import { HttpError } from "../../utils/errors.ts";
import { page } from "../../utils/render.tsx";
import { formFields, viewerOf } from "../_helpers.ts";
import { Flash, type FlashData, sessionHash } from "./_shared.tsx";

type ListedKey = {
  id: number;
  name: string;
  scopes: ("read" | "write")[];
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
};
type KeysPageData = { balance: number; keys: ListedKey[]; flash: FlashData | null };

/** The form's access choice: "read", or "write" for read and write. */
const NewKeyForm = z.object({
  name: ApiKeyName,
  access: z.enum(["read", "write"], { error: "choose read or read and write" }),
});
const KeyId = z.string().regex(/^[1-9][0-9]{0,14}$/).transform(Number);

type FormState = {
  errors: Partial<Record<"name" | "access", string>>;
  values: { name: string; access: string };
};

function NewKey({ created }: { created: CreatedApiKey }) {
  return (
    <section aria-labelledby="new-key-title" id="new-key">
      <h2 id="new-key-title">New key: {created.name}</h2>
      <p>
        <code id="new-key-value">{created.key}</code>
      </p>
      <p role="status">
        <mark>
          Copy this key now: it is shown only this once. Tally keeps only its hash and cannot show
          it again.
        </mark>{" "}
        Send it as <code>Authorization: Bearer &lt;key&gt;</code>.
      </p>
    </section>
  );
}

function CreateSection({ form }: { form: FormState }) {
  const access = form.values.access || "write";
  return (
    <section aria-labelledby="create-title">
      <h2 id="create-title">Make a key</h2>
      <form method="post" action="/admin/api-keys">
        <Field
          name="name"
          label="Name (what uses it)"
          value={form.values.name}
          error={form.errors.name}
          required
        />
        <fieldset aria-invalid={form.errors.access ? "true" : undefined}>
          <legend>Access</legend>
          <label>
            <input type="radio" name="access" value="write" checked={access === "write"} />
            Read and write
          </label>
          <label>
            <input type="radio" name="access" value="read" checked={access === "read"} />
            Read only (GET requests)
          </label>
          {form.errors.access && <small class="field-error">{form.errors.access}</small>}
        </fieldset>
        <button type="submit">Make the key</button>
      </form>
    </section>
  );
}

function KeysSection({ keys }: { keys: ListedKey[] }) {
  return (
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">Keys</h2>
      {keys.length === 0 ? <p>No API keys yet.</p> : (
        <DataTable
          id="api-keys"
          stack
          columns={[
            { label: "Name" },
            { label: "Key" },
            { label: "Scopes" },
            { label: "Created" },
            { label: "Last used" },
            { label: "Revoked" },
            { label: "Action" },
          ]}
        >
          {keys.map((key) => (
            <tr key={key.id} data-key={key.id}>
              <td data-label="Name">{key.name}</td>
              <td data-label="Key">
                <code>{key.prefix}…</code>
              </td>
              <td data-label="Scopes">{key.scopes.join(", ")}</td>
              <td data-label="Created">{formatDateTime(key.createdAt)}</td>
              <td data-label="Last used">
                {key.lastUsedAt ? formatDateTime(key.lastUsedAt) : "never"}
              </td>
              <td data-label="Revoked">{key.revokedAt ? formatDateTime(key.revokedAt) : ""}</td>
              <td data-label="Action">
                {!key.revokedAt && (
                  <form method="post" action={`/admin/api-keys/${key.id}/revoke`} class="inline">
                    <button
                      type="submit"
                      class="secondary"
                      aria-label={`Revoke the key ${key.name}`}
                    >
                      Revoke
                    </button>
                  </form>
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </section>
  );
}

async function keysPage(
  c: Context<AppEnv>,
  options: { created?: CreatedApiKey; form?: FormState; status?: 200 | 400 } = {},
) {
  const [row] = await c.var.sql<{ page: KeysPageData }[]>`
    select app.page_admin_api_keys(${currentUser(c).id}, ${await sessionHash(c)}) as page`;
  return page(c, {
    title: "Admin: API keys",
    viewer: viewerOf(c, row.page.balance),
    status: options.status,
    children: (
      <>
        <nav aria-label="Breadcrumb">
          <ul>
            <li>
              <a href="/admin">Admin</a>
            </li>
            <li>API keys</li>
          </ul>
        </nav>
        <h1>API keys</h1>
        <p>
          Keys of the server-to-server API (<code>/api/v1</code>). A read key may only send GET
          requests. Revoking a key refuses its next request.
        </p>
        <Flash flash={row.page.flash} />
        {options.created && <NewKey created={options.created} />}
        <CreateSection form={options.form ?? { errors: {}, values: { name: "", access: "" } }} />
        <KeysSection keys={row.page.keys} />
      </>
    ),
  });
}

/** Mounted at /admin/api-keys. */
export const adminApiKeys = new Hono<AppEnv>();
adminApiKeys.use(requirePageUser, requireAdmin);

adminApiKeys.get("/", (c) => keysPage(c));

// Answered with the page itself, not a redirect: the key must reach no URL, flash or log.
adminApiKeys.post("/", async (c) => {
  const fields = await formFields(c);
  const values = { name: fields.name ?? "", access: fields.access ?? "" };
  const parsed = NewKeyForm.safeParse(fields);
  if (!parsed.success) {
    const errors: FormState["errors"] = {};
    for (const issue of parsed.error.issues) {
      const field = issue.path[0];
      if (field === "name" || field === "access") errors[field] ??= issue.message;
    }
    return keysPage(c, { form: { errors, values }, status: 400 });
  }
  const created = await createApiKey(c.var.sql, {
    name: parsed.data.name,
    scopes: parsed.data.access === "write" ? ["read", "write"] : ["read"],
    createdBy: currentUser(c).id,
  });
  return keysPage(c, { created });
});

adminApiKeys.post("/:id/revoke", async (c) => {
  const id = KeyId.safeParse(c.req.param("id"));
  if (!id.success) throw new HttpError(404, "not_found", "no such API key");
  await c.var.sql`
    select app.admin_form_revoke_api_key(${currentUser(c).id}, ${await sessionHash(c)},
                                         ${id.data})`;
  return c.redirect("/admin/api-keys", 303);
});
