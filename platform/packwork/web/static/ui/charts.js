/* Draws each report of a dashboard page with Chart.js. The page carries each chart's data in a
   <script type="application/json"> block (no inline script: the CSP is script-src 'self'); the
   figures are also in the table beside the chart, so nothing here is the only way to read them. */
(function () {
  "use strict";

  function scales(spec) {
    if (spec.type === "pie") return {};
    var value = spec.horizontal ? "x" : "y";
    var found = { x: { beginAtZero: true }, y: { beginAtZero: true } };
    var twoAxes = spec.datasets.some(function (d) { return d.axis === "count"; });
    if (!twoAxes) return found;
    // Counts beside sums: the sums on the main value axis, the counts on a second one opposite.
    found.count = { axis: value, position: spec.horizontal ? "top" : "right", beginAtZero: true,
                    grid: { drawOnChartArea: false }, ticks: { precision: 0 } };
    spec.datasets.forEach(function (d) {
      d[value + "AxisID"] = d.axis === "count" ? "count" : value;
    });
    return found;
  }

  function options(spec) {
    var round = spec.type === "pie";
    return {
      indexAxis: spec.horizontal ? "y" : "x",
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: round || spec.datasets.length > 1 } },
      scales: scales(spec)
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
