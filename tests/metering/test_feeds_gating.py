"""Live metrics and debug events cost nothing while nobody watches, and start/stop with the viewer."""

from service.realtime.state.memory import MemoryState
from service.realtime.tenancy import AppInfo

from live.debug_stream import MAX_EVENTS, DebugStream
from live.live_metrics import LiveMetrics

DASHBOARD = AppInfo(id=1, key="dashkey", secret="dashsecret")
WATCHED_APP = 7


class Hub:
    """The two hub calls the feeds use: local subscriber counts, and local fan-out (recorded)."""

    def __init__(self):
        self.local: dict[str, int] = {}
        self.frames: list[tuple[int, str, str]] = []

    def local_count(self, app_id, channel):
        return self.local.get(channel, 0)

    def broadcast(self, app_id, channel, frame, except_socket=None):
        self.frames.append((app_id, channel, frame))


class Node:
    def __init__(self):
        self.hub, self.state, self.published = Hub(), MemoryState(), []

    async def publish(self, app, channels, event, data):
        self.published.append((app.id, channels, event, data))


def viewer(node, feed, channel, joined: bool):
    node.hub.local[channel] = 1 if joined else 0
    feed.note(DASHBOARD.id, "subscribed" if joined else "unsubscribed", {"channel": channel, "socket_id": "1.1"})


async def test_metrics_are_sent_only_while_a_viewer_is_subscribed_here():
    node = Node()
    metrics = LiveMetrics(node, DASHBOARD)
    await metrics.after_flush()
    assert node.hub.frames == []
    viewer(node, metrics, f"private-metrics-{WATCHED_APP}", joined=True)
    await node.state.connections_changed(WATCHED_APP, 1, 3)
    await metrics.after_flush()
    assert len(node.hub.frames) == 1
    app_id, channel, frame = node.hub.frames[0]
    assert (app_id, channel) == (DASHBOARD.id, f"private-metrics-{WATCHED_APP}")
    assert '\\"sockets\\":1' in frame and '\\"tabs\\":3' in frame
    viewer(node, metrics, f"private-metrics-{WATCHED_APP}", joined=False)
    await metrics.after_flush()
    assert len(node.hub.frames) == 1


async def test_debug_events_are_queued_only_for_watched_apps():
    node = Node()
    debug = DebugStream(node, DASHBOARD)
    debug.note(WATCHED_APP, "connected", {"socket_id": "1.2"})
    await debug.forward()
    assert node.published == [] and not debug.pending

    viewer(node, debug, f"private-debug-{WATCHED_APP}", joined=True)
    debug.note(WATCHED_APP, "published", {"channels": ["a"], "event": "e", "bytes": 2, "data": "secret payload"})
    debug.note(8, "connected", {"socket_id": "1.3"})  # an app nobody watches
    await debug.forward()
    [(app_id, channels, event, data)] = node.published
    assert (app_id, channels, event) == (DASHBOARD.id, [f"private-debug-{WATCHED_APP}"], "events")
    assert '"kind":"published"' in data and "secret payload" not in data and '"dropped":0' in data


async def test_debug_events_beyond_the_limit_are_counted_not_sent():
    node = Node()
    debug = DebugStream(node, DASHBOARD)
    viewer(node, debug, f"private-debug-{WATCHED_APP}", joined=True)
    for i in range(MAX_EVENTS + 7):
        debug.note(WATCHED_APP, "published", {"channels": ["a"], "event": str(i), "bytes": 1})
    await debug.forward()
    data = node.published[0][3]
    assert data.count('"kind":"published"') == MAX_EVENTS and '"dropped":7' in data


async def test_debug_watch_ends_when_the_last_local_viewer_leaves_and_the_cluster_has_none():
    node = Node()
    debug = DebugStream(node, DASHBOARD)
    viewer(node, debug, f"private-debug-{WATCHED_APP}", joined=True)
    viewer(node, debug, f"private-debug-{WATCHED_APP}", joined=False)
    await debug.refresh_watched()  # the memory state has no subscriptions for the dashboard app
    assert WATCHED_APP not in debug.watched
    await node.state.add_subscription(DASHBOARD.id, f"private-debug-{WATCHED_APP}", "2.2")  # a viewer elsewhere
    await debug.refresh_watched()
    assert WATCHED_APP in debug.watched
