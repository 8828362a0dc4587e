"""Publishing over HTTP, shared by the DRF views and the in-loop fast path.

Validation is ``validation.py``'s (raising ``ApiError``); this module runs the publish on
the node and builds the Pusher-shaped answers.
"""

from typing import Any

from service.realtime.channel_names import Kind, kind_of

from . import validation


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
    infos = []
    for event in events:
        await node.publish(app, event["channels"], event["name"], event["data"], event["socket_id"])
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
