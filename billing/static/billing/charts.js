// Small helpers around uPlot (vendored in vendor/uplot): responsive time-series charts.
(function () {
  "use strict";

  const COLORS = { physical: "#4f46e5", logical: "#0ea5e9", messages: "#16a34a", deliveries: "#f59e0b", logicalDeliveries: "#94a3b8" };
  const HEIGHT = 220;

  function compact(value) {
    if (value == null) return "–";
    const abs = Math.abs(value);
    if (abs >= 1e9) return `${(value / 1e9).toFixed(1)}G`;
    if (abs >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
    if (abs >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
    return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }

  function pathsOf(s) {
    if (s.bars) return uPlot.paths.bars({ size: [s.bars, 60], gap: 1 });
    if (s.stepped) return uPlot.paths.stepped({ align: 1 });
    return undefined;
  }

  // series: [{label, color, stepped?, bars? (width 0..1), fill?}]; returns the uPlot instance (call setData on it).
  function timeChart(element, series, options = {}) {
    const opts = {
      width: element.clientWidth || 600,
      height: HEIGHT,
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max * 1.15, options.minMax || 1)] } },
      axes: [
        { stroke: "#5c6570", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e2e5ea" } },
        { stroke: "#5c6570", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e2e5ea" }, size: 56,
          values: (u, values) => values.map(compact) },
      ],
      series: [{}].concat(series.map((s) => ({
        label: s.label, stroke: s.color, width: s.bars ? 1 : 2,
        fill: s.bars ? `${s.color}cc` : s.fill ? `${s.color}1f` : undefined,
        paths: pathsOf(s),
        points: { show: false }, value: (u, v) => compact(v),
      }))),
    };
    const empty = [[]].concat(series.map(() => []));
    const chart = new uPlot(opts, empty, element);
    new ResizeObserver(() => chart.setSize({ width: element.clientWidth, height: HEIGHT })).observe(element);
    return chart;
  }

  window.TabcastCharts = { COLORS, timeChart, compact };
})();
