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
  let paused = false;
  let count = 0;

  function channelsOf(event) {
    return event.channels || (event.channel ? [event.channel] : []);
  }

  function matches(event) {
    const wanted = filterInput.value.trim();
    return !wanted || channelsOf(event).some((channel) => channel.includes(wanted));
  }

  function details(event) {
    const parts = [];
    if (event.event) parts.push(`event ${event.event}`);
    if (event.bytes !== undefined) parts.push(`${event.bytes} bytes`);
    if (event.socket_id) parts.push(`socket ${event.socket_id}`);
    if (event.origin) parts.push(`from ${event.origin}`);
    if (event.code) parts.push(`code ${event.code}`);
    if (event.message) parts.push(event.message);
    return parts.join(" · ");
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function addRow(event) {
    const tr = document.createElement("tr");
    tr.dataset.channels = channelsOf(event).join(" ");
    tr.className = `console-row console-row--${event.kind}`;
    tr.hidden = !matches(event);
    const time = new Date(event.t * 1000).toLocaleTimeString([], { hour12: false }) +
      `.${String(Math.floor((event.t % 1) * 1000)).padStart(3, "0")}`;
    const kind = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = `kind kind--${event.kind}`;
    badge.textContent = LABELS[event.kind] || event.kind;
    kind.appendChild(badge);
    tr.append(cell(time, "mono"), kind, cell(channelsOf(event).join(", ") || "—", "mono"), cell(details(event)));
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
    batch.events.forEach(addRow);
    if (batch.dropped) {
      addRow({ t: Date.now() / 1000, kind: "dropped", message: `${batch.dropped} more events were not shown (rate limit)` });
    }
  }

  filterInput.addEventListener("input", () => {
    const wanted = filterInput.value.trim();
    for (const tr of rows.children) tr.hidden = Boolean(wanted) && !tr.dataset.channels.includes(wanted);
  });
  document.getElementById("pause").addEventListener("click", (e) => {
    paused = !paused;
    e.target.textContent = paused ? "Resume" : "Pause";
  });
  document.getElementById("clear").addEventListener("click", () => {
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

  window.TabcastDashboard.subscribe(page.channel, "events", onEvents);
})();
