// The HTML 404 and error pages, in the look of the rest of the site. The JSON API keeps its JSON
// errors (middlewares/errors.ts decides by path).
import type { Context } from "hono";
import type { AppEnv } from "../utils/app_env.ts";
import type { HttpError } from "../utils/errors.ts";
import { page } from "../utils/render.tsx";
import { viewerOf } from "./_helpers.ts";

async function navBalance(c: Context<AppEnv>): Promise<number | null> {
  const user = c.var.user;
  if (!user) return null;
  try {
    const [row] = await c.var.sql<{ balance: number }[]>`
      select credits.balance(${user.id}) as balance`;
    return Number(row.balance);
  } catch {
    // An error page must render even when the database is what failed.
    return null;
  }
}

export async function notFoundPage(c: Context<AppEnv>): Promise<Response> {
  return page(c, {
    title: "Page not found",
    viewer: viewerOf(c, await navBalance(c)),
    status: 404,
    children: (
      <article>
        <h1>Page not found</h1>
        <p>There is no page at this address.</p>
        <a href="/" role="button">Go to the home page</a>
      </article>
    ),
  });
}

export async function errorPage(c: Context<AppEnv>, error: HttpError): Promise<Response> {
  if (error.status === 404) return await notFoundPage(c);
  const unavailable = error.status === 503;
  const status = error.status;
  const title = unavailable
    ? "Temporarily unavailable"
    : status >= 500
    ? "Something went wrong"
    : "That did not work";
  return page(c, {
    title,
    viewer: viewerOf(c, null),
    status,
    children: (
      <article>
        <h1>{title}</h1>
        <p>
          {unavailable
            ? "The service is briefly unavailable. Nothing was changed; please try again in a moment."
            : status >= 500
            ? "An unexpected error happened on our side. Nothing was changed; please try again."
            : error.message}
        </p>
        {status >= 500 && c.var.requestId && (
          <p>
            <small>
              Request id: <code>{c.var.requestId}</code>
            </small>
          </p>
        )}
        <a href="/" role="button">Go to the home page</a>
      </article>
    ),
  });
}
