// Session tokens, without the HTTP around them: the cookie is "<user id>.<random token>" and the
// database keeps only SHA-256(token); the user id lets the lookup go straight to the user's rows
// (and to the right shard, docs/scaling.md). The cookie itself is set in middlewares/session.ts.

export const SESSION_COOKIE = "tally_session";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type NewSession = { token: string; tokenHash: Uint8Array };

export async function newSessionToken(): Promise<NewSession> {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replaceAll("=", "");
  return { token, tokenHash: await sha256(token) };
}

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** The (user id, token hash) pair a cookie value names, if it is well formed. */
export async function parseSessionCookie(
  value: string | undefined,
): Promise<{ userId: string; tokenHash: Uint8Array } | null> {
  if (!value) return null;
  const dot = value.indexOf(".");
  const userId = value.slice(0, dot);
  const token = value.slice(dot + 1);
  if (dot < 0 || !UUID.test(userId) || token.length < 20 || token.length > 100) return null;
  return { userId, tokenHash: await sha256(token) };
}
