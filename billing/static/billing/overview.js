// App usage page: live charts fed by the metrics channel, history charts and savings from the usage API.
(function () {
  "use strict";

  const { COLORS, timeChart, compact } = window.TabcastCharts;
  const page = document.getElementById("overview").dataset;
  const WINDOW = 300; // seconds of live history kept on screen
  let history = null; // what the history charts and savings show now
  let refreshing = null; // a pending history refresh
  let refreshedAt = 0;
  let lastTotals = null; // traffic totals of the previous live sample
  const REFRESH_GAP = 5000; // ms between history refreshes driven by live samples

  // --- live ---
  const live = { t: [], sockets: [], tabs: [], messages: [], deliveries: [] };
  const connectionsChart = timeChart(document.getElementById("live-connections"), [
    { label: "Physical connections", color: COLORS.physical, stepped: true, fill: true },
    { label: "Logical clients (tabs)", color: COLORS.logical, stepped: true },
  ], { minMax: 4 });
  const messagesChart = timeChart(document.getElementById("live-messages"), [
    { label: "Messages / s", color: COLORS.messages, fill: true },
    { label: "Frames / s", color: COLORS.deliveries },
  ]);

  function setText(id, value) {
    document.getElementById(id).textContent = value;
  }

  function push(sample) {
    const last = live.t[live.t.length - 1];
    if (last !== undefined && sample.t <= last) return false; // already plotted
    live.t.push(sample.t);
    live.sockets.push(sample.sockets);
    live.tabs.push(sample.tabs);
    live.messages.push(sample.messages_per_s ?? null);
    live.deliveries.push(sample.deliveries_per_s ?? null);
    while (live.t.length && live.t[0] < sample.t - WINDOW) Object.values(live).forEach((a) => a.shift());
    return true;
  }

  function plotLive(now) {
    while (live.t.length && live.t[0] <= now - WINDOW) Object.values(live).forEach((a) => a.shift());
    // An empty point five minutes back keeps the x axis at the full window from the first sample.
    const x = [now - WINDOW, ...live.t];
    const series = (values) => [null, ...values];
    connectionsChart.setData([x, series(live.sockets), series(live.tabs)]);
    connectionsChart.root.parentElement.dataset.samples = live.t.length; // for tests and curious readers
    messagesChart.setData([x, series(live.messages), series(live.deliveries)]);
  }

  // The server recorded the last five minutes of connection counts: start with them, not empty.
  const recorded = JSON.parse(document.getElementById("live-history").textContent || "[]");
  recorded.forEach(push);
  if (live.t.length) plotLive(Math.max(live.t[live.t.length - 1], Date.now() / 1000));

  function onMetrics(data) {
    const sample = typeof data === "string" ? JSON.parse(data) : data;
    if (!push(sample)) return;
    plotLive(sample.t);
    setText("kpi-sockets", sample.sockets);
    setText("kpi-tabs", sample.tabs);
    setText("kpi-saved", Math.max(sample.tabs - sample.sockets, 0));
    // New traffic or a new peak changes the history and the savings too (the first sample
    // also refreshes them: the page may have loaded just before the last counts were flushed).
    const totals = sample.totals;
    const moved = !lastTotals || totals.messages !== lastTotals.messages || totals.deliveries !== lastTotals.deliveries;
    const peaked = history && (sample.sockets > history.summary.peak_sockets || sample.tabs > history.summary.peak_tabs);
    lastTotals = totals;
    if (moved || peaked) refreshHistorySoon();
    if (sample.messages_per_s !== undefined) {
      setText("kpi-rate", compact(sample.messages_per_s));
      setText("kpi-deliveries", compact(sample.deliveries_per_s));
    }
  }

  window.TabcastDashboard.subscribe(page.channel, "metrics", onMetrics);

  // --- history and savings ---
  // Bars: the wide light one is what one socket per tab would have needed, the narrow one in
  // front of it is what Tabcast used.
  const historyConnections = timeChart(document.getElementById("history-connections"), [
    { label: "Peak logical (tabs)", color: COLORS.logical, bars: 0.8 },
    { label: "Peak physical", color: COLORS.physical, bars: 0.45 },
  ], { minMax: 4 });
  const historyDeliveries = timeChart(document.getElementById("history-deliveries"), [
    { label: "One socket per tab", color: COLORS.logicalDeliveries, bars: 0.8 },
    { label: "Frames sent", color: COLORS.deliveries, bars: 0.45 },
    { label: "Messages", color: COLORS.messages },
  ]);

  function bytes(n) {
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return i === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${units[i]}`;
  }

  function plural(n, word) {
    return `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;
  }

  function refreshHistorySoon() {
    if (refreshing) return;
    refreshing = setTimeout(() => {
      refreshing = null;
      refreshedAt = Date.now();
      loadHistory(document.querySelector(".segmented__item.is-active").dataset.range);
    }, Math.max(0, refreshedAt + REFRESH_GAP - Date.now()));
  }

  function renderHistory(shown) {
    history = shown;
    const step = history.granularity === "day" ? 86400 : 3600; // seconds per bar
    // An empty slot at both ends gives the first and last bars room (uPlot centres bars on x).
    const x = history.points.map((p) => Date.parse(p.start) / 1000);
    x.unshift(x[0] - step);
    x.push(x[x.length - 1] + step);
    const col = (name) => [null, ...history.points.map((p) => p[name]), null];
    historyConnections.setData([x, col("peak_tabs"), col("peak_sockets")]);
    historyDeliveries.setData([x, col("logical_deliveries"), col("deliveries"), col("messages")]);
    const s = history.summary;
    setText("history-totals", `${plural(s.messages, "message")}, ${plural(s.deliveries, "frame")} ` +
      `(${bytes(s.bytes)}) delivered; peaks of ${plural(s.peak_sockets, "connection")} and ${plural(s.peak_tabs, "tab")}.`);
    setText("savings-range", `Over the last ${history.range === "24h" ? "24 hours" : "30 days"}, from this app's real counters.`);
    setText("recovery-range", `Over the last ${history.range === "24h" ? "24 hours" : "30 days"}: ` +
      "reconnecting clients resumed from channel history (docs/recovery.md).");
    setText("kpi-resumes-recovered", s.resumes_recovered.toLocaleString());
    setText("kpi-resumes-unrecovered", s.resumes_unrecovered.toLocaleString());
    setText("kpi-stored-messages", s.stored_messages.toLocaleString());
    setText("kpi-stored-bytes", bytes(s.stored_bytes));
    for (const saving of history.savings) {
      const item = document.querySelector(`.saving[data-key="${saving.key}"]`);
      item.querySelector(".saving__value").textContent = saving.display;
      item.querySelector(".saving__sentence").textContent = saving.sentence;
    }
  }

  function loadHistory(range) {
    fetch(`${page.usageUrl}?range=${range}`, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error(response.status))))
      .then(renderHistory)
      .catch(() => setText("history-totals", "Could not load the history; it will be retried."));
  }

  document.querySelectorAll(".segmented__item").forEach((button) => {
    button.addEventListener("click", () => {
      document.querySelectorAll(".segmented__item").forEach((b) => {
        b.classList.toggle("is-active", b === button);
        b.setAttribute("aria-pressed", String(b === button));
      });
      loadHistory(button.dataset.range);
    });
  });

  renderHistory(JSON.parse(document.getElementById("initial-history").textContent));
  // History moves slowly: refresh it every minute for the range shown.
  setInterval(() => loadHistory(document.querySelector(".segmented__item.is-active").dataset.range), 60000);
})();
