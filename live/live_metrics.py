"""Live metrics for the dashboard's overview, pushed through Tabcast itself.

The overview subscribes to ``private-metrics-<app id>`` on the internal dashboard app. Right
after each traffic flush (every second) this process writes one ``metrics`` event to the
dashboards watching *from this process*, straight into its hub: each process serves its
own viewers with the cluster-wide numbers, so nothing is published twice and no work is
done while nobody watches.
"""

import time

import orjson

from service.realtime import protocol

from .dashboard_app import METRICS_PREFIX, watched_app_id

EVENT = "metrics"


class LiveMetrics:
    def __init__(self, node, dashboard):
        self.node = node
        self.dashboard = dashboard
        self.watched: dict[str, int] = {}  # metrics channel with local viewers -> app id
        self.previous: dict[int, tuple[float, dict]] = {}  # app id -> (when, traffic totals)

    def note(self, app_id: int, kind: str, details: dict) -> None:
        """Node listener: track which metrics channels have viewers on this process."""
        if app_id != self.dashboard.id or kind not in ("subscribed", "unsubscribed"):
            return
        channel = details["channel"]
        watched = watched_app_id(channel)
        if watched is None or not channel.startswith(METRICS_PREFIX):
            return
        if self.node.hub.local_count(app_id, channel):
            self.watched[channel] = watched
        else:
            self.watched.pop(channel, None)
            self.previous.pop(watched, None)

    async def after_flush(self) -> None:
        """Node flush hook: one metrics event per watched app."""
        for channel, app_id in list(self.watched.items()):
            sample = await self.sample(app_id)
            frame = protocol.event(EVENT, channel, orjson.dumps(sample).decode())
            self.node.hub.broadcast(self.dashboard.id, channel, frame)

    async def sample(self, app_id: int) -> dict:
        """Connections now, and traffic per second since the previous sample."""
        state = self.node.state
        sockets, tabs = await state.connection_counts(app_id)
        totals = await state.traffic_totals(app_id)
        now = time.time()
        rates = {}
        before = self.previous.get(app_id)
        if before is not None and now > before[0]:
            elapsed = now - before[0]
            rates = {f"{name}_per_s": round((totals.get(name, 0) - before[1].get(name, 0)) / elapsed, 2)
                     for name in ("messages", "deliveries", "logical_deliveries", "bytes")}
        self.previous[app_id] = (now, totals)
        return {"t": round(now, 3), "sockets": sockets, "tabs": tabs, "totals": totals, **rates}
