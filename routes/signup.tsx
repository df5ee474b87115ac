// GET and POST /signup: the sign-up form, which works without JavaScript. It validates with the
// API's schema (utils/schemas.ts) and calls the same account function (utils/accounts.ts) as
// POST /api/auth/signup.
import { Hono } from "hono";
import { Field } from "../components/Field.tsx";
import { setSessionCookie } from "../middlewares/session.ts";
import { createAccount } from "../utils/accounts.ts";
import type { AppEnv } from "../utils/app_env.ts";
import { signupSource } from "../utils/client_address.ts";
import { toHttpError } from "../utils/errors.ts";
import { page } from "../utils/render.tsx";
import { SignupBody } from "../utils/schemas.ts";
import {
  AccountForm,
  EmailField,
  type FieldErrors,
  fieldErrors,
  nextQuery,
} from "./_account_form.tsx";
import { formFields, safeNext } from "./_helpers.ts";

function SignupForm({ email, name, next, errors }: {
  email: string;
  name: string;
  next: string | undefined;
  errors: FieldErrors;
}) {
  return (
    <AccountForm
      title="Create your account"
      action="/signup"
      next={next}
      errors={errors}
      submit="Sign up"
      intro={next?.startsWith("/checkout/") && (
        <p>Sign up first; you will continue to the payment right after.</p>
      )}
      other={
        <>
          Already have an account? <a href={`/login${nextQuery(next)}`}>Log in</a>
        </>
      }
    >
      <EmailField value={email} error={errors.email} />
      <Field
        name="name"
        label="Name (optional)"
        value={name}
        error={errors.name}
        autocomplete="name"
      />
      <Field
        name="password"
        label="Password"
        type="password"
        error={errors.password}
        autocomplete="new-password"
        required
        minLength={8}
        hint="At least 8 characters."
      />
    </AccountForm>
  );
}

export const signup = new Hono<AppEnv>();

signup.get("/signup", (c) => {
  const next = c.req.query("next");
  if (c.var.user) return c.redirect(safeNext(next, c.var.config.appUrl), 303);
  return page(c, {
    title: "Sign up",
    viewer: null,
    children: <SignupForm email="" name="" next={next} errors={{}} />,
  });
});

signup.post("/signup", async (c) => {
  const next = c.req.query("next");
  const fields = await formFields(c);
  const email = fields.email ?? "";
  const name = fields.name ?? "";
  const show = (errors: FieldErrors, status: 400 | 409 | 429) =>
    page(c, {
      title: "Sign up",
      viewer: null,
      status,
      children: <SignupForm email={email} name={name} next={next} errors={errors} />,
    });
  const parsed = SignupBody.safeParse({
    email,
    password: fields.password ?? "",
    ...(name.trim() ? { name } : {}),
  });
  if (!parsed.success) return show(fieldErrors(parsed.error), 400);
  try {
    const { userId, token } = await createAccount(c.var.sql, parsed.data, signupSource(c));
    setSessionCookie(c, userId, token);
  } catch (error) {
    const http = toHttpError(error, c.var.requestId);
    if (http.code === "email_taken") {
      return show({ email: "An account with this email already exists. Log in instead?" }, 409);
    }
    if (http.status === 429) {
      for (const [header, value] of Object.entries(http.headers)) c.header(header, value);
      return show({ form: "Too many sign-ups from your network; try again in an hour." }, 429);
    }
    throw http;
  }
  return c.redirect(safeNext(next, c.var.config.appUrl), 303);
});
