// Hypercare console: the little JavaScript pages use. Everything works
// without it; it adds the CSRF header to htmx actions and draws charts.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]');
  document.addEventListener("htmx:configRequest", function (event) {
    if (csrf) {
      event.detail.headers["X-CSRF-Token"] = csrf.content;
    }
  });

  // <script type="application/json" data-chart="id"> holds
  // {"series": [{"label": ..., "stroke": ..., "scale"?: ...}], "data": [[x...], [y...], ...],
  //  "time"?: false, "xLabel"?: ..., "axes"?: [...]}
  function drawCharts(root) {
    if (typeof uPlot === "undefined") {
      return;
    }
    root.querySelectorAll("script[data-chart]").forEach(function (node) {
      var target = document.getElementById(node.dataset.chart);
      if (!target || target.dataset.drawn) {
        return;
      }
      var spec = JSON.parse(node.textContent);
      var width = Math.max(280, target.clientWidth || 600);
      var series = [spec.xLabel ? { label: spec.xLabel } : {}].concat(spec.series.map(function (s) {
        return { label: s.label, stroke: s.stroke, width: s.width || 2, dash: s.dash, scale: s.scale };
      }));
      // Optional: "time": false for a numeric x axis (a rate), and "axes"
      // [{label, scale, side}] for y axes with their own scales (1 = right).
      var options = { width: width, height: 300, series: series, scales: { x: { time: spec.time !== false } } };
      if (spec.axes) {
        options.axes = [spec.xLabel ? { label: spec.xLabel } : {}].concat(spec.axes.map(function (a) {
          return { label: a.label, scale: a.scale, side: a.side === 1 ? 1 : 3, grid: { show: a.side !== 1 } };
        }));
      }
      new uPlot(options, spec.data, target);
      target.dataset.drawn = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();
