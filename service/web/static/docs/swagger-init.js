// /docs: Swagger UI over this server's own /openapi.json (relative, so a path prefix works).
// validatorUrl null: Swagger UI would otherwise send the spec to an online validator.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  validatorUrl: null,
});
