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
  // {"series": [{"label": ..., "stroke": ..., "width"?: ..., "dash"?: [..], "scale"?: ...}],
  //  "data": [[x...], [y...], ...],
  //  optional "time": false (a numeric x axis, e.g. a rate) with "xLabel",
  //  "axes": [{label, scale, side}] (y axes with their own scales; side 1 = right),
  //  "band": [hi, lo] (series indices: the area between them is filled),
  //  "marks": [{"x": epoch seconds, "label": "D0"}] (vertical lines),
  //  "tz": "Europe/Paris" (the time zone of a time axis)}
  function markPlugin(marks) {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = "#1b1f24";
          ctx.fillStyle = "#1b1f24";
          ctx.lineWidth = 1;
          ctx.setLineDash([3, 3]);
          ctx.textBaseline = "alphabetic";
          // The canvas counts device pixels; labels are staggered so that
          // marks close together stay readable on a phone.
          var px = window.devicePixelRatio || 1;
          ctx.font = Math.round(12 * px) + "px system-ui, sans-serif";
          marks.forEach(function (mark, i) {
            var x = Math.round(u.valToPos(mark.x, "x", true));
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            var y = u.bbox.top + 14 * px * (1 + i % 3);
            var room = u.bbox.left + u.bbox.width - x;
            var fits = ctx.measureText(mark.label).width + 4 * px <= room;
            ctx.textAlign = fits ? "left" : "right";
            ctx.fillText(mark.label, fits ? x + 4 * px : x - 4 * px, y);
          });
          ctx.restore();
        }]
      }
    };
  }

  function timeAxis(spec) {
    // Times in the launch's zone (named on the page), on a 24-hour clock.
    var toDate = function (ts) {
      return spec.tz ? uPlot.tzDate(new Date(ts * 1e3), spec.tz) : new Date(ts * 1e3);
    };
    var fmtHour = uPlot.fmtDate("{HH}:{mm}");
    var fmtDay = uPlot.fmtDate("{D} {MMM}");
    var fmtFull = uPlot.fmtDate("{D} {MMM} {YYYY} {HH}:{mm}");
    return {
      toDate: toDate,
      series: { label: "Time", value: function (u, v) { return v == null ? "--" : fmtFull(toDate(v)); } },
      axis: {
        values: function (u, splits, axisIdx, space, incr) {
          return splits.map(function (s) { return incr >= 86400 ? fmtDay(toDate(s)) : fmtHour(toDate(s)); });
        }
      }
    };
  }

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
      var width = Math.max(280, (target.clientWidth || 600) - 16);
      var isTime = spec.time !== false;
      var time = isTime ? timeAxis(spec) : null;
      var series = [isTime ? time.series : (spec.xLabel ? { label: spec.xLabel } : {})].concat(spec.series.map(function (s) {
        return { label: s.label, stroke: s.stroke, width: s.width || 2, dash: s.dash, scale: s.scale, spanGaps: false };
      }));
      var xAxis = isTime ? time.axis : (spec.xLabel ? { label: spec.xLabel } : {});
      var options = { width: width, height: 300, series: series, scales: { x: { time: isTime } } };
      if (isTime) {
        options.tzDate = time.toDate;
      }
      options.axes = [xAxis].concat(spec.axes ? spec.axes.map(function (a) {
        return { label: a.label, scale: a.scale, side: a.side === 1 ? 1 : 3, grid: { show: a.side !== 1 } };
      }) : [{}]);
      if (spec.band) {
        options.bands = [{ series: spec.band, fill: "rgba(140, 149, 159, 0.18)" }];
      }
      if (spec.marks && spec.marks.length) {
        options.plugins = [markPlugin(spec.marks)];
      }
      new uPlot(options, spec.data, target);
      target.dataset.drawn = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();
