"""The last five minutes of each app's connection counts, second by second, for the usage page.

The live chart used to start empty and fill only while the page stayed open. Now every server
process, right after its traffic flush (every second), records the cluster-wide counts of the
apps it serves (or served in the last five minutes, so the drop to zero is recorded too) into
the state backend's per-app ring; the page is served with what the ring holds. Processes
writing the same second write the same cluster-wide counts, so duplicates are harmless.
"""

import logging
import time

from service.realtime.outage import redis_outage
from service.realtime.state.base import CONNECTION_HISTORY_SECONDS

log = logging.getLogger(__name__)


class ConnectionHistory:
    def __init__(self, node):
        self.node = node
        self.recent: dict[int, float] = {}  # app id -> last time it had sockets on this process

    async def after_flush(self, now: float | None = None) -> None:
        """Node flush hook: one sample per app served here now or in the last five minutes."""
        now = time.time() if now is None else now
        for app_id in self.node.hub.apps():
            self.recent[app_id] = now
        second = int(now)
        for app_id, seen in list(self.recent.items()):
            if now - seen > CONNECTION_HISTORY_SECONDS:
                del self.recent[app_id]
                continue
            try:
                sockets, tabs = await self.node.state.connection_counts(app_id)
                await self.node.state.note_connections(app_id, second, sockets, tabs)
            except Exception as exc:  # noqa: BLE001 - the chart misses a second; the engine does not care
                if not redis_outage.absorb(exc):
                    log.warning("connection history of app %s not recorded", app_id, exc_info=True)
                return


async def read(node, app_id: int) -> list[dict]:
    """The recorded samples of the last five minutes, oldest first, as the metrics feed sends them."""
    since = int(time.time()) - CONNECTION_HISTORY_SECONDS
    return [{"t": second, "sockets": sockets, "tabs": tabs}
            for second, sockets, tabs in await node.state.connection_history(app_id, since)]
