"""Publishing over HTTP, shared by the DRF views and the in-loop fast path.

Validation is ``validation.py``'s (raising ``ApiError``); this module runs the publish on
the node and builds the Pusher-shaped answers.
"""

from typing import Any

from rest_framework.exceptions import APIException, ErrorDetail

from service.realtime import metrics, quotas
from service.realtime.channel_names import Kind, kind_of

from . import validation
from .errors import ApiError


class QuotaExceeded(ApiError, APIException):
    """429 for a tenant over its message quota, or an app over its deliveries/s, on both API paths.

    As an ``ApiError`` the fast path answers it (``Retry-After`` from ``retry_after``); as a DRF
    ``APIException`` the DRF views do (``Retry-After`` from ``wait``). Both bodies are
    ``{"error": <message naming the quota, its limit and when it resets>, "code": 429}``;
    ``extra`` holds the same facts as fields ({"quota", "limit", "resets_at"}).
    """

    status_code = 429

    def __init__(self, hit: "quotas.MessageQuotaHit | quotas.DeliveryRateHit"):
        retry_after = hit.retry_after()
        metrics.limit_rejected(hit.quota)  # /metrics: tabcast_limit_rejections_total{kind=<quota>}
        ApiError.__init__(self, 429, hit.message, retry_after=retry_after)
        self.detail = ErrorDetail(hit.message, f"{hit.quota}_exceeded")
        self.wait = retry_after
        self.extra = {"quota": hit.quota, "limit": hit.limit, "resets_at": hit.resets_at_iso}


def event_from(app, payload: Any) -> dict:
    """A validated event from a ``/events`` body (raises ApiError)."""
    return validation.event(app, payload)


def simple_event_from(app, payload: Any) -> dict:
    """A validated event from a ``/publish`` body, which names the event ``event``."""
    return validation.simple_event(app, payload)


def batch_from(app, payload: Any) -> list[dict]:
    return validation.batch(app, payload)


async def publish(node, app, events: list[dict]) -> list[dict]:
    """Publish validated events; returns the info attributes asked for, per channel, per event."""
    # In memory: no database or Redis call per publish. Deliveries/s: the cluster-wide flag, or what
    # this process wrote or accepted for the app since its last traffic flush (under a second).
    hit = quotas.message_refusal(app) or quotas.delivery_refusal(app, node.hub.traffic.get(app.id))
    if hit is not None:
        raise QuotaExceeded(hit)
    infos = []
    for event in events:
        await node.publish(app, event["channels"], event["name"], event["data"], event["socket_id"], source="http")
        info = {}
        for channel in event["channels"] if event["info"] else ():
            attrs = {}
            if "subscription_count" in event["info"] and kind_of(channel) != Kind.PRESENCE:
                attrs["subscription_count"] = await node.state.subscription_count(app.id, channel)
            if "user_count" in event["info"] and kind_of(channel) == Kind.PRESENCE:
                attrs["user_count"] = len(await node.state.members(app.id, channel))
            info[channel] = attrs
        infos.append(info)
    return infos


def events_answer(event: dict, infos: list[dict]) -> dict:
    return {"channels": infos[0]} if event["info"] else {}


def batch_answer(events: list[dict], infos: list[dict]) -> dict:
    if any(e["info"] for e in events):
        return {"batch": [info.get(e["channels"][0], {}) for info, e in zip(infos, events)]}
    return {}


def simple_answer(event: dict) -> dict:
    return {"ok": True, "channels": len(event["channels"])}
