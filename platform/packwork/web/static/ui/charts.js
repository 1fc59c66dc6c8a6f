/* Draws each report of a dashboard page with Chart.js. The page carries each chart's data in a
   <script type="application/json"> block (no inline script: the CSP is script-src 'self'); the
   figures are also in the table beside the chart, so nothing here is the only way to read them. */
(function () {
  "use strict";

  function options(spec) {
    var round = spec.type === "pie";
    return {
      indexAxis: spec.horizontal ? "y" : "x",
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: round || spec.datasets.length > 1 } },
      scales: round ? {} : { x: { beginAtZero: true }, y: { beginAtZero: true } }
    };
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || !window.Chart) return;
    var spec = JSON.parse(source.textContent);
    canvas.chart = new window.Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.datasets },
      options: options(spec)
    });
    canvas.dataset.drawn = "true";
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
