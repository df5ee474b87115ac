// The browser script of /docs/api (routes/docs/api.tsx): renders /api/v1/openapi.json with
// Swagger UI. A file of its own, not inline: the pages' CSP allows scripts from this origin only.
globalThis.addEventListener("DOMContentLoaded", () => {
  globalThis.SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // The validator badge would send the document to another origin.
    validatorUrl: null,
  });
});
