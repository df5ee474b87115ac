// /api/v1, the server-to-server API (docs/api.md#v1-routes): one OpenAPI sub-app per resource,
// and the description of them all at /api/v1/openapi.json.
import { customers } from "./customers.ts";
import { describe } from "./openapi.ts";
import { reservations } from "./reservations.ts";
import { usage } from "./usage.ts";
import { v1App } from "./_openapi.ts";

export const v1 = v1App();
v1.route("/customers", customers);
v1.route("/reservations", reservations);
v1.route("/usage", usage);
v1.route("/", describe(v1));
