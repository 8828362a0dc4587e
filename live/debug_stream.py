"""The debug console's feed: what happens on an app, forwarded while someone watches.

A node listener queues an app's events (connections, subscriptions, publishes, client
events, errors) only if ``private-debug-<app id>`` on the dashboard app has subscribers
somewhere in the cluster. Every ``INTERVAL`` seconds the queue goes out as one ``events``
publish (through the broker, so a console on any process sees events from every process).
At most ``MAX_EVENTS`` events per app go out per interval; the rest are only counted, so a
busy app cannot flood the console or the dashboard app.
"""

import asyncio
import logging
import time
from collections import defaultdict

import orjson

from service.realtime.outage import redis_outage

from .dashboard_app import DEBUG_PREFIX, debug_channel, watched_app_id

log = logging.getLogger(__name__)

EVENT = "events"
INTERVAL = 0.5
MAX_EVENTS = 25
# Event details that may be shown; anything else the engine adds stays out of the console.
SHOWN_DETAILS = ("socket_id", "channel", "channels", "event", "bytes", "origin", "code", "message")


class DebugStream:
    def __init__(self, node, dashboard):
        self.node = node
        self.dashboard = dashboard
        self.watched: set[int] = set()  # apps whose debug channel has subscribers (cluster-wide)
        self.watched_here: set[int] = set()  # ... subscribers on this process, known at once
        self.pending: dict[int, list[dict]] = defaultdict(list)
        self.dropped: dict[int, int] = defaultdict(int)

    def note(self, app_id: int, kind: str, details: dict) -> None:
        """Node listener: queue the event if a console watches the app (cheap when none does)."""
        if app_id == self.dashboard.id:
            self._note_console(kind, details)
            return
        if app_id not in self.watched:
            return
        queued = self.pending[app_id]
        if len(queued) >= MAX_EVENTS:
            self.dropped[app_id] += 1
            return
        shown = {k: details[k] for k in SHOWN_DETAILS if k in details}
        queued.append({"t": round(time.time(), 3), "kind": kind, **shown})

    def _note_console(self, kind: str, details: dict) -> None:
        """A console on this process (un)subscribed: start or stop at once, not at the next refresh."""
        channel = details.get("channel", "")
        app_id = watched_app_id(channel)
        if app_id is None or not channel.startswith(DEBUG_PREFIX):
            return
        if kind == "subscribed":
            self.watched_here.add(app_id)
            self.watched.add(app_id)
        elif kind == "unsubscribed" and not self.node.hub.local_count(self.dashboard.id, channel):
            self.watched_here.discard(app_id)

    async def run(self) -> None:
        """Forward queued events every INTERVAL seconds, for as long as the node runs."""
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                await self.refresh_watched()
                await self.forward()
            except Exception as exc:  # noqa: BLE001 - the console misses a beat; the engine does not care
                if not redis_outage.absorb(exc):  # a Redis outage is logged once, not every round
                    log.warning("debug stream round failed", exc_info=True)

    async def refresh_watched(self) -> None:
        channels = await self.node.state.channels(self.dashboard.id, DEBUG_PREFIX)
        cluster = {app_id for app_id in map(watched_app_id, channels) if app_id is not None}
        self.watched = cluster | self.watched_here

    async def forward(self) -> None:
        pending, self.pending = self.pending, defaultdict(list)
        dropped, self.dropped = self.dropped, defaultdict(int)
        for app_id in pending.keys() | dropped.keys():
            if app_id not in self.watched:
                continue
            payload = orjson.dumps({"events": pending.get(app_id, []), "dropped": dropped.get(app_id, 0)}).decode()
            await self.node.publish(self.dashboard, [debug_channel(app_id)], EVENT, payload)
