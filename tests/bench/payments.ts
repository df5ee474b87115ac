// The payment benchmarks of docs/performance.md, owned by the payments work (issue 3):
//   webhook_p99_ms  signed Stripe invoice.paid events over HTTP, 8 concurrent senders
//   rss_mb          the server's resident memory under that load
// Each is a Bench in this list; tests/bench/main.ts runs them after the credit benchmarks.
import type { Bench } from "./harness.ts";
import { webhookBench } from "./webhook.ts";

export const paymentBenches: Bench[] = [webhookBench];
