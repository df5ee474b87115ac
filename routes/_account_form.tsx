// What the /signup and /login forms share (not a route): the frame, the email field, and the
// field errors read from the shared schemas' zod errors.
import type { ComponentChildren } from "preact";
import type { z } from "zod";
import { Field } from "../components/Field.tsx";

export type FieldErrors = Partial<Record<"email" | "password" | "name" | "form", string>>;

export function fieldErrors(error: z.ZodError): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of error.issues) {
    const field = String(issue.path[0] ?? "form") as keyof FieldErrors;
    errors[field] ??= issue.message.charAt(0).toUpperCase() + issue.message.slice(1);
  }
  return errors;
}

export function nextQuery(next: string | undefined): string {
  return next ? `?next=${encodeURIComponent(next)}` : "";
}

// The frame both account forms share: title, form-level error, the form posting back with ?next=
// kept, and the link to the other form.
export function AccountForm({ title, action, next, errors, submit, intro, children, other }: {
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

export function EmailField({ value, error }: { value: string; error: string | undefined }) {
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
