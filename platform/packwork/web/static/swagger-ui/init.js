// Starts Swagger UI on the element that names the spec URL; kept out of the page so a
// Content-Security-Policy of script-src 'self' holds.
window.addEventListener("DOMContentLoaded", function () {
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
  });
});
