// What the admin pages share (not a route): the message an action leaves for the next page, and
// the session hash those messages are kept under.
import type { Context } from "hono";
import { formatCredits, formatSigned } from "../../components/format.ts";
import { sessionKey } from "../../middlewares/session.ts";
import type { AppEnv } from "../../utils/app_env.ts";
import { HttpError } from "../../utils/errors.ts";

/** What an admin action did, as the server keeps it for the next page (sql/app_admin.sql). */
export type FlashData =
  | { kind: "adjusted"; amount: number; balance: number }
  | {
    kind: "daily_run";
    expired: number;
    granted: number;
    durationMs: number;
    status?: string;
  }
  | { kind: "replayed"; eventId: string; result: string }
  | { kind: "api_key_revoked"; id: number; name: string };
function flashText(flash: FlashData): string {
  switch (flash.kind) {
    case "adjusted":
      return `Adjusted by ${formatSigned(flash.amount)}: the balance is now ${
        formatCredits(Number(flash.balance))
      }.`;
    case "daily_run":
      if (flash.status === "skipped") {
        return "Another daily run is going: this one did nothing (see its progress below).";
      }
      return `Daily job ${
        flash.status ?? "done"
      }: ${flash.expired} grants expired, ${flash.granted} granted, in ${flash.durationMs} ms.`;
    case "replayed":
      return `Replayed ${flash.eventId}: ${flash.result}.`;
    case "api_key_revoked":
      return `Revoked the API key "${flash.name}": requests with it are refused from now on.`;
  }
}

export function Flash({ flash }: { flash: FlashData | null }) {
  return flash
    ? (
      <p role="status" id="flash">
        <mark>{flashText(flash)}</mark>
      </p>
    )
    : null;
}

/** The hash of the session's token: the admin's messages are kept per session. */
export async function sessionHash(c: Context<AppEnv>): Promise<Uint8Array> {
  const key = await sessionKey(c);
  if (!key) throw new HttpError(401, "unauthorized", "sign in first");
  return key.tokenHash;
}
