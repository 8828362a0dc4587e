// The dashboard's own Tabcast client: subscribes to a private channel of the internal
// dashboard app, authorized by the dashboard (session + CSRF) for apps of the user's team.
(function () {
  "use strict";

  const config = document.getElementById("realtime").dataset;

  function authorize(params, callback) {
    const body = new URLSearchParams({ socket_id: params.socketId, channel_name: params.channelName });
    fetch(config.authUrl, {
      method: "POST", body, credentials: "same-origin",
      headers: { "X-CSRFToken": config.csrf, Accept: "application/json" },
    })
      .then((response) => response.json().then((data) => {
        if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
        return data;
      }))
      .then((data) => callback(null, data), (error) => callback(error, null));
  }

  function showState(state) {
    const badge = document.getElementById("live-state");
    if (!badge) return;
    const live = state === "connected";
    badge.textContent = live ? "Live" : state === "connecting" || state === "initialized" ? "Connecting…" : "Offline, retrying";
    badge.className = `badge ${live ? "badge--on" : "badge--off"}`;
  }

  // subscribe(channel, event, handler): one client per page, shared by the page's modules.
  let client = null;
  function subscribe(channel, event, handler) {
    if (typeof window.Tabcast !== "function") {
      showState("unavailable");
      return null;
    }
    if (client === null) {
      client = new window.Tabcast(config.key, {
        host: config.host, forceTLS: location.protocol === "https:",
        channelAuthorization: { customHandler: authorize },
      });
      client.connection.bind("state_change", (states) => showState(states.current));
      showState(client.connection.state);
    }
    const subscription = client.subscribe(channel);
    subscription.bind(event, handler);
    return subscription;
  }

  window.TabcastDashboard = { subscribe, csrf: config.csrf };
})();
