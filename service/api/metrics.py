"""GET /metrics: this process's live numbers in the Prometheus text format, for operators."""

import hmac

from django.conf import settings
from django.http import HttpResponse

from service.realtime.node import current_node

LOOPBACK = {"127.0.0.1", "::1"}


def _allowed(request) -> bool:
    token = settings.TABCAST["METRICS_TOKEN"]
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    return request.META.get("REMOTE_ADDR") in LOOPBACK


async def metrics(request):
    """Runs on the event loop (an async view), so it reads the hub without racing it."""
    if not _allowed(request):
        return HttpResponse("Forbidden: set TABCAST_METRICS_TOKEN and send it as a Bearer token\n",
                            status=403, content_type="text/plain")
    node = current_node()
    lines = []
    if node is not None:
        hub = node.hub
        node_label = f'node="{node.state.node_id}"'
        lines += [
            "# HELP tabcast_connections Open WebSocket connections in this process.",
            "# TYPE tabcast_connections gauge",
            f"tabcast_connections{{{node_label}}} {len(hub.connections)}",
            "# HELP tabcast_logical_clients Tabs carried by this process's connections.",
            "# TYPE tabcast_logical_clients gauge",
            f"tabcast_logical_clients{{{node_label}}} {sum(c.tabs for c in hub.connections.values())}",
            "# HELP tabcast_local_channels Channels with at least one subscriber in this process.",
            "# TYPE tabcast_local_channels gauge",
            f"tabcast_local_channels{{{node_label}}} {len(hub.local_channels())}",
            "# HELP tabcast_groups_joined Channels groups this process is a member of (one per local channel).",
            "# TYPE tabcast_groups_joined gauge",
            f"tabcast_groups_joined{{{node_label}}} {len(node.broker.groups)}",
        ]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")
