// What the HTML pages share (not a route): who is looking, safe redirect targets, form fields.
import type { Context } from "hono";
import type { Viewer } from "../components/Layout.tsx";
import type { AppEnv } from "../utils/app_env.ts";
import { HttpError } from "../utils/errors.ts";
import { isAdmin } from "../middlewares/admin.ts";
import { refuseNul } from "../utils/validation.ts";

export function viewerOf(c: Context<AppEnv>, balance: number | null): Viewer {
  const user = c.var.user;
  return user ? { email: user.email, balance, admin: isAdmin(c) } : null;
}

/**
 * Where to continue after sign-in: `next` resolved against APP_URL, as a browser would resolve
 * it, kept only when it lands on APP_URL's own origin (else the dashboard). The answer is the
 * normalised path, so tabs, newlines and backslashes that browsers drop or rewrite ("/\t/evil"
 * reads as "//evil") never reach the Location header.
 */
export function safeNext(next: string | undefined | null, appUrl: string): string {
  if (!next) return "/dashboard";
  let target: URL;
  try {
    target = new URL(next, `${appUrl}/`);
  } catch {
    return "/dashboard";
  }
  if (target.origin !== new URL(appUrl).origin) return "/dashboard";
  // "/.//evil" normalises to "//evil", which a browser would read as another host.
  return `${target.pathname.replace(/^\/{2,}/, "/")}${target.search}${target.hash}`;
}

/** The form fields of a urlencoded or multipart body as strings (files are ignored). */
export async function formFields(c: Context<AppEnv>): Promise<Record<string, string>> {
  let body: Record<string, string | File | (string | File)[]>;
  try {
    body = await c.req.parseBody();
  } catch {
    throw new HttpError(400, "invalid_request", "the form could not be read");
  }
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(body)) {
    if (typeof value === "string") fields[name] = value;
  }
  refuseNul(fields);
  return fields;
}
