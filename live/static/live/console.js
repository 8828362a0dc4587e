// Debug console: the app's live events from the debug channel, a channel filter, and test publishes.
(function () {
  "use strict";

  const page = document.getElementById("console").dataset;
  const rows = document.getElementById("console-rows");
  const table = document.querySelector(".console-table");
  const empty = document.getElementById("console-empty");
  const filterInput = document.getElementById("channel-filter");
  const MAX_ROWS = 500;
  const LABELS = {
    connected: "Connected", disconnected: "Disconnected", subscribed: "Subscribed", unsubscribed: "Unsubscribed",
    published: "Published", client_event: "Client event", error: "Error", dropped: "Not shown",
  };
  // The last few minutes of events survive a reload: kept in this tab's sessionStorage, per
  // app (its debug channel), at most KEEP_EVENTS of them and none older than KEEP_SECONDS.
  const STORE_KEY = `tabcast-console:${page.channel}`;
  const KEEP_SECONDS = 300;
  const KEEP_EVENTS = 500;
  let paused = false;
  let count = 0;
  let kept = loadKept();

  function loadKept() {
    try {
      const events = JSON.parse(sessionStorage.getItem(STORE_KEY) || "[]");
      return Array.isArray(events) ? fresh(events) : [];
    } catch (e) {
      return [];
    }
  }

  function fresh(events) {
    const since = Date.now() / 1000 - KEEP_SECONDS;
    return events.filter((event) => event && typeof event.t === "number" && event.t >= since).slice(-KEEP_EVENTS);
  }

  function keep(events) {
    kept = fresh(kept.concat(events));
    try {
      sessionStorage.setItem(STORE_KEY, JSON.stringify(kept));
    } catch (e) {
      // Storage full or disabled: the console still works, it only forgets on reload.
    }
  }

  function channelsOf(event) {
    return event.channels || (event.channel ? [event.channel] : []);
  }

  function matches(event) {
    const wanted = filterInput.value.trim();
    return !wanted || channelsOf(event).some((channel) => channel.includes(wanted));
  }

  function details(event) {
    const parts = [];
    if (event.event) parts.push(["event", `event ${event.event}`]);
    if (event.bytes !== undefined) parts.push(["bytes", `${event.bytes} bytes`]);
    if (event.socket_id) parts.push(["socket", `socket ${event.socket_id}`]);
    if (event.origin) parts.push(["origin", `from ${event.origin}`]);
    if (event.code) parts.push(["code", `code ${event.code}`]);
    if (event.message) parts.push(["message", event.message]);
    const td = document.createElement("td");
    for (const [name, text] of parts) {
      const span = document.createElement("span");
      span.className = `console-detail console-${name}`;
      span.textContent = text;
      td.appendChild(span);
    }
    return td;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function addRow(event, restored) {
    const tr = document.createElement("tr");
    tr.dataset.channels = channelsOf(event).join(" ");
    tr.className = `console-row console-row--${event.kind}${restored ? " console-row--restored" : ""}`;
    tr.hidden = !matches(event);
    const time = new Date(event.t * 1000).toLocaleTimeString([], { hour12: false }) +
      `.${String(Math.floor((event.t % 1) * 1000)).padStart(3, "0")}`;
    const kind = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = `kind kind--${event.kind}`;
    badge.textContent = LABELS[event.kind] || event.kind;
    kind.appendChild(badge);
    tr.append(cell(time, "mono console-time"), kind, cell(channelsOf(event).join(", ") || "—", "mono"), details(event));
    rows.prepend(tr);
    while (rows.children.length > MAX_ROWS) rows.lastChild.remove();
    table.hidden = false;
    empty.hidden = true;
    count += 1;
    document.getElementById("event-count").textContent = `${count} event${count === 1 ? "" : "s"}`;
  }

  function onEvents(data) {
    if (paused) return;
    const batch = typeof data === "string" ? JSON.parse(data) : data;
    const shown = batch.events.slice();
    if (batch.dropped) {
      shown.push({ t: Date.now() / 1000, kind: "dropped", message: `${batch.dropped} more events were not shown (rate limit)` });
    }
    shown.forEach((event) => addRow(event, false));
    keep(shown);
  }

  function restore() {
    if (!kept.length) return;
    kept.forEach((event) => addRow(event, true));
    const note = document.createElement("tr");
    note.className = "console-restored-note";
    note.id = "console-restored";
    const td = document.createElement("td");
    td.colSpan = 4;
    td.textContent = `${kept.length} earlier event${kept.length === 1 ? "" : "s"} from the last ${KEEP_SECONDS / 60} minutes, kept across the reload`;
    note.appendChild(td);
    rows.prepend(note);
  }

  filterInput.addEventListener("input", () => {
    const wanted = filterInput.value.trim();
    for (const tr of rows.children) {
      if (tr.dataset.channels !== undefined) tr.hidden = Boolean(wanted) && !tr.dataset.channels.includes(wanted);
    }
  });
  document.getElementById("pause").addEventListener("click", (e) => {
    paused = !paused;
    e.target.textContent = paused ? "Resume" : "Pause";
  });
  document.getElementById("clear").addEventListener("click", () => {
    kept = [];
    sessionStorage.removeItem(STORE_KEY);
    rows.replaceChildren();
    count = 0;
    document.getElementById("event-count").textContent = "0 events";
    table.hidden = true;
    empty.hidden = false;
  });

  const form = document.getElementById("publish-form");
  const result = document.getElementById("publish-result");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    result.textContent = "Publishing…";
    fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": window.TabcastDashboard.csrf },
    })
      .then((response) => response.json().then((body) => ({ ok: response.ok, body })))
      .then(({ ok, body }) => {
        form.querySelectorAll(".field__error.js").forEach((el) => el.remove());
        if (ok) {
          result.textContent = `Published ${body.published.event} on ${body.published.channel}.`;
          return;
        }
        result.textContent = body.error || "Please fix the fields above.";
        for (const [name, errors] of Object.entries(body.errors || {})) {
          const input = form.elements[name];
          if (!input) continue;
          const p = document.createElement("p");
          p.className = "field__error js";
          p.textContent = errors.map((error) => error.message).join(" ");
          input.closest(".field").appendChild(p);
        }
      })
      .catch(() => { result.textContent = "Could not publish; try again."; });
  });

  // Channel history: the messages kept for one channel, with their positions (docs/recovery.md).
  const historyForm = document.getElementById("history-form");
  const historyResult = document.getElementById("history-result");
  const historyTable = document.getElementById("history-table");
  const historyRows = document.getElementById("history-rows");

  function showHistory(history) {
    historyRows.replaceChildren();
    for (const message of history.messages) {
      const tr = document.createElement("tr");
      tr.className = "history-row";
      tr.append(cell(message.position, "mono"), cell(message.event, "mono"), cell(message.data, "mono"));
      historyRows.appendChild(tr);
    }
    historyTable.hidden = !history.messages.length;
    const n = history.messages.length;
    if (!history.history) {
      historyResult.textContent = "This app keeps no history.";
    } else if (n) {
      historyResult.textContent = `${n} message${n === 1 ? "" : "s"} on ${history.channel}, oldest first; position now ${history.position}.`;
    } else {
      historyResult.textContent = `No messages kept for ${history.channel}; position now ${history.position}.`;
    }
  }

  historyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    historyResult.textContent = "Loading…";
    historyForm.querySelectorAll(".field__error.js").forEach((el) => el.remove());
    const query = new URLSearchParams(new FormData(historyForm));
    fetch(`${historyForm.action.split("#")[0]}?${query}`, {
      credentials: "same-origin", headers: { Accept: "application/json" },
    })
      .then((response) => response.json().then((body) => ({ ok: response.ok, body })))
      .then(({ ok, body }) => {
        if (ok) {
          showHistory(body);
          return;
        }
        historyResult.textContent = body.error || "Please fix the channel name.";
        for (const [name, errors] of Object.entries(body.errors || {})) {
          const input = historyForm.elements[name];
          if (!input) continue;
          const p = document.createElement("p");
          p.className = "field__error js";
          p.textContent = errors.map((error) => error.message).join(" ");
          input.closest(".field").appendChild(p);
        }
      })
      .catch(() => { historyResult.textContent = "Could not load the history; try again."; });
  });

  restore();
  window.TabcastDashboard.subscribe(page.channel, "events", onEvents);
})();
