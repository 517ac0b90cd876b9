// Draws each figure's chart with uPlot from its JSON island. Without this script (or
// JavaScript), the table beside it is the whole figure.
(function () {
  "use strict";
  if (typeof uPlot === "undefined") return;
  // Okabe-Ito: told apart by readers with any colour vision; the table carries the numbers.
  var COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"];

  function percent(v) { return v == null ? "" : Math.round(v * 100) + "%"; }

  function options(data, width) {
    var labels = data.x;
    var bars = data.kind !== "line";
    var shares = data.series.length > 0 && data.series.every(function (s) { return s.share; });
    var series = [{ label: "", value: function (u, i) { return labels[i] == null ? "" : labels[i]; } }];
    data.series.forEach(function (s, n) {
      var colour = COLOURS[n % COLOURS.length];
      var entry = {
        label: s.label,
        stroke: colour,
        width: bars ? 1 : 2,
        fill: bars ? colour : undefined,
        value: function (u, v) { return s.share ? percent(v) : (v == null ? "" : v.toLocaleString(document.documentElement.lang)); }
      };
      if (bars) {
        var count = data.series.length;
        entry.paths = uPlot.paths.bars({ size: [0.8 / (data.kind === "stacked_bar" ? 1 : count), 64], align: 0 });
      }
      series.push(entry);
    });
    return {
      title: undefined,
      width: width,
      height: Math.max(180, Math.min(320, Math.round(width * 0.5))),
      series: series,
      scales: { x: { time: false, range: function () { return [-0.6, labels.length - 0.4]; } },
                y: shares ? { range: [0, 1] } : { auto: true, range: function (u, min, max) { return [Math.min(0, min), max > 0 ? max * 1.08 : 1]; } } },
      axes: [
        { values: function (u, ticks) { return ticks.map(function (t) { return Number.isInteger(t) && labels[t] != null ? labels[t] : ""; }); },
          splits: function () { return labels.map(function (_, i) { return i; }); }, rotate: labels.length > 6 ? -30 : 0 },
        { values: function (u, ticks) { return ticks.map(function (t) { return shares ? percent(t) : t.toLocaleString(document.documentElement.lang); }); } }
      ],
      legend: { show: data.series.length > 1 },
      cursor: { drag: { x: false, y: false } }
    };
  }

  function columns(data) {
    var xs = data.x.map(function (_, i) { return i; });
    var ys = data.series.map(function (s) { return s.values.slice(); });
    if (data.kind === "stacked_bar") {
      // Each series drawn on top of the ones before it: cumulative values, drawn last first.
      for (var k = 1; k < ys.length; k++) {
        for (var i = 0; i < xs.length; i++) { ys[k][i] = (ys[k][i] || 0) + (ys[k - 1][i] || 0); }
      }
    }
    return [xs].concat(ys);
  }

  document.querySelectorAll("[data-chart]").forEach(function (box) {
    var island = document.getElementById(box.getAttribute("data-chart"));
    if (!island) return;
    var data;
    try { data = JSON.parse(island.textContent); } catch (e) { return; }
    box.hidden = false;
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", data.title);
    if (data.rtl) box.dir = "ltr"; // the x axis runs left to right; the table beside it is RTL
    var width = Math.max(280, box.clientWidth || 600);
    var opts = options(data, width);
    if (data.kind === "stacked_bar") { opts.series = [opts.series[0]].concat(opts.series.slice(1).reverse()); }
    var cols = columns(data);
    if (data.kind === "stacked_bar") { cols = [cols[0]].concat(cols.slice(1).reverse()); }
    var plot = new uPlot(opts, cols, box);
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        var w = Math.max(280, box.clientWidth);
        plot.setSize({ width: w, height: Math.max(180, Math.min(320, Math.round(w * 0.5))) });
      }, 150);
    });
  });
})();
