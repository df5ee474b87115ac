// GET and POST /login: the login form, which works without JavaScript. It validates with the
// API's schema (utils/schemas.ts) and calls the same account function (utils/accounts.ts) as
// POST /api/auth/login.
import { Hono } from "hono";
import { Field } from "../components/Field.tsx";
import { setSessionCookie } from "../middlewares/session.ts";
import { logIn } from "../utils/accounts.ts";
import type { AppEnv } from "../utils/app_env.ts";
import { HttpError } from "../utils/errors.ts";
import { page } from "../utils/render.tsx";
import { LoginBody } from "../utils/schemas.ts";
import {
  AccountForm,
  EmailField,
  type FieldErrors,
  fieldErrors,
  nextQuery,
} from "./_account_form.tsx";
import { formFields, safeNext } from "./_helpers.ts";

function LoginForm({ email, next, errors }: {
  email: string;
  next: string | undefined;
  errors: FieldErrors;
}) {
  return (
    <AccountForm
      title="Log in"
      action="/login"
      next={next}
      errors={errors}
      submit="Log in"
      other={
        <>
          New here? <a href={`/signup${nextQuery(next)}`}>Create an account</a>
        </>
      }
    >
      <EmailField value={email} error={errors.email} />
      <Field
        name="password"
        label="Password"
        type="password"
        error={errors.password}
        autocomplete="current-password"
        required
      />
    </AccountForm>
  );
}

export const login = new Hono<AppEnv>();

login.get("/login", (c) => {
  const next = c.req.query("next");
  if (c.var.user) return c.redirect(safeNext(next, c.var.config.appUrl), 303);
  return page(c, {
    title: "Log in",
    viewer: null,
    children: <LoginForm email="" next={next} errors={{}} />,
  });
});

login.post("/login", async (c) => {
  const next = c.req.query("next");
  const fields = await formFields(c);
  const email = fields.email ?? "";
  const show = (errors: FieldErrors, status: 400 | 401 | 429) =>
    page(c, {
      title: "Log in",
      viewer: null,
      status,
      children: <LoginForm email={email} next={next} errors={errors} />,
    });
  const parsed = LoginBody.safeParse({ email, password: fields.password ?? "" });
  if (!parsed.success) return show(fieldErrors(parsed.error), 400);
  try {
    const { userId, token } = await logIn(c.var.sql, parsed.data);
    setSessionCookie(c, userId, token);
  } catch (error) {
    if (error instanceof HttpError && error.status === 401) {
      return show({ password: "Wrong email or password." }, 401);
    }
    if (error instanceof HttpError && error.status === 429) {
      for (const [header, value] of Object.entries(error.headers)) c.header(header, value);
      return show({ form: "Too many failed logins for this email; try again in 15 minutes." }, 429);
    }
    throw error;
  }
  return c.redirect(safeNext(next, c.var.config.appUrl), 303);
});
