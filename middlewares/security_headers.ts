// Security headers of every answer (docs/api.md#headers-and-limits), with Hono's secureHeaders: a
// CSP that the pages and islands work under (scripts and styles only from this origin, no inline
// script, never framed), nosniff, a Referrer-Policy, and no-store on personal JSON.
import type { MiddlewareHandler } from "hono";
import { secureHeaders } from "hono/secure-headers";

/**
 * The pages load the island bundles of /static/islands/ and stylesheets only; islands set styles
 * through the CSSOM (element.style), which style-src does not govern. Referrer-Policy is
 * "same-origin": with "no-referrer" a browser sends `Origin: null` on same-origin form posts,
 * which the CSRF check would refuse.
 */
export const securityHeaders: MiddlewareHandler = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'none'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
  xFrameOptions: "DENY",
  referrerPolicy: "same-origin",
});

/** Answers about one user (or one app's customers) must not stay in a browser's or proxy's cache. */
const PERSONAL = /^\/api\/(me|v1)(\/|$)/;

export const noStorePersonal: MiddlewareHandler = async (c, next) => {
  await next();
  if (PERSONAL.test(c.req.path)) c.res.headers.set("Cache-Control", "no-store");
};
