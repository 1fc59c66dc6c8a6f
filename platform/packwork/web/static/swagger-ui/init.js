// Starts Swagger UI on the element that names the spec URL; kept out of the page so a
// Content-Security-Policy of script-src 'self' holds.
window.addEventListener("DOMContentLoaded", function () {
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    // One tag per entity: a pack's hundreds of operations, all expanded, are too many to
    // render or read at once. Tags open on a click (or a deep link).
    docExpansion: "none",
  });
});
