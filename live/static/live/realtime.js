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

  // "Live" once the channel is subscribed (not merely connected): from then on nothing is missed.
  const LABELS = {
    live: "Live", connecting: "Connecting…", initialized: "Connecting…", connected: "Subscribing…",
    refused: "Not authorized", unavailable: "Live updates unavailable",
  };
  let subscribed = false;
  function showState(state) {
    const badge = document.getElementById("live-state");
    if (!badge) return;
    const shown = state === "connected" && subscribed ? "live" : state;
    badge.textContent = LABELS[shown] || "Offline, retrying…";
    badge.className = `badge ${shown === "live" ? "badge--on" : "badge--off"}`;
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
    subscription.bind("pusher:subscription_succeeded", () => {
      subscribed = true;
      showState(client.connection.state);
    });
    subscription.bind("pusher:subscription_error", () => showState("refused"));
    client.connection.bind("state_change", (states) => {
      if (states.current !== "connected") subscribed = false; // resubscribes on reconnect
    });
    subscription.bind(event, handler);
    return subscription;
  }

  window.TabcastDashboard = { subscribe, csrf: config.csrf };
})();
