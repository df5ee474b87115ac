// /signup, /login and /logout as HTML forms that work without JavaScript. They validate with the
// API's schemas and call the same account functions (utils/accounts.ts) as /api/auth/*.
import { Hono } from "hono";
import type { ComponentChildren } from "preact";
import type { z } from "zod";
import { Field } from "../components/Field.tsx";
import { createAccount, logIn } from "../utils/accounts.ts";
import type { AppEnv } from "../utils/app_env.ts";
import { signupSource } from "../utils/client_address.ts";
import { HttpError, toHttpError } from "../utils/errors.ts";
import { page } from "../utils/render.tsx";
import { clearSessionCookie, sessionKey, setSessionCookie } from "../middlewares/session.ts";
import { LoginBody, SignupBody } from "./api/auth.ts";
import { formFields, safeNext } from "./_helpers.ts";

type FieldErrors = Partial<Record<"email" | "password" | "name" | "form", string>>;

function fieldErrors(error: z.ZodError): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of error.issues) {
    const field = String(issue.path[0] ?? "form") as keyof FieldErrors;
    errors[field] ??= issue.message.charAt(0).toUpperCase() + issue.message.slice(1);
  }
  return errors;
}

function nextQuery(next: string | undefined): string {
  return next ? `?next=${encodeURIComponent(next)}` : "";
}

// The frame both account forms share: title, form-level error, the form posting back with ?next=
// kept, and the link to the other form.
function AccountForm({ title, action, next, errors, submit, intro, children, other }: {
  title: string;
  action: "/signup" | "/login";
  next: string | undefined;
  errors: FieldErrors;
  submit: string;
  intro?: ComponentChildren;
  children: ComponentChildren;
  other: ComponentChildren;
}) {
  return (
    <article class="narrow">
      <h1>{title}</h1>
      {intro}
      {errors.form && <p role="alert" class="field-error">{errors.form}</p>}
      <form method="post" action={`${action}${nextQuery(next)}`} noValidate>
        {children}
        <button type="submit">{submit}</button>
      </form>
      <p>{other}</p>
    </article>
  );
}

function EmailField({ value, error }: { value: string; error: string | undefined }) {
  return (
    <Field
      name="email"
      label="Email"
      type="email"
      value={value}
      error={error}
      autocomplete="email"
      required
    />
  );
}

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

export const authPages = new Hono<AppEnv>();

authPages.get("/signup", (c) => {
  const next = c.req.query("next");
  if (c.var.user) return c.redirect(safeNext(next, c.var.config.appUrl), 303);
  return page(c, {
    title: "Sign up",
    viewer: null,
    children: <SignupForm email="" name="" next={next} errors={{}} />,
  });
});

authPages.post("/signup", async (c) => {
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
    const http = toHttpError(error);
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

authPages.get("/login", (c) => {
  const next = c.req.query("next");
  if (c.var.user) return c.redirect(safeNext(next, c.var.config.appUrl), 303);
  return page(c, {
    title: "Log in",
    viewer: null,
    children: <LoginForm email="" next={next} errors={{}} />,
  });
});

authPages.post("/login", async (c) => {
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

authPages.post("/logout", async (c) => {
  const key = await sessionKey(c);
  if (key) await c.var.sql`select app.close_session(${key.userId}, ${key.tokenHash})`;
  clearSessionCookie(c);
  return c.redirect("/", 303);
});
