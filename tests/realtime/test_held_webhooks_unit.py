"""HeldWebhooks with an in-memory state and a recording sender (no server): the decisions."""

import asyncio
from types import SimpleNamespace

from service.realtime.held_webhooks import HeldWebhooks
from service.realtime.state import Member
from service.realtime.state.memory import MemoryState

APP = SimpleNamespace(id=1, webhook_url="http://hooks.example/")


class Recorder:
    def __init__(self):
        self.sent = []
        self.arrived = asyncio.Event()

    def send(self, app, event):
        self.sent.append(event)
        self.arrived.set()


def held(delay: float, state=None) -> HeldWebhooks:
    node = SimpleNamespace(state=state or MemoryState(), loop=asyncio.get_running_loop(), webhooks=Recorder())
    return HeldWebhooks(node, delay)


async def test_a_return_cancels_both_and_a_real_leave_is_sent_after_the_delay():
    hooks = held(0.05)
    await hooks.vacated(APP, "room")
    await hooks.occupied(APP, "room")  # back at once: neither is sent
    await hooks.vacated(APP, "other")  # a real leave: sent after the delay
    await asyncio.wait_for(hooks.node.webhooks.arrived.wait(), 5)
    assert hooks.node.webhooks.sent == [{"name": "channel_vacated", "channel": "other"}]
    await hooks.close()


async def test_the_leave_is_not_sent_if_the_channel_is_occupied_when_the_delay_ends():
    state = MemoryState()
    hooks = held(0.05, state)
    await hooks.vacated(APP, "room")
    await state.add_subscription(APP.id, "room", "1.1")  # occupied meanwhile (the mark not released)
    await hooks.member_removed(APP, "presence-x", 5)
    await state.add_member(APP.id, "presence-x", "1.2", Member(5))  # back, on another process
    await hooks.vacated(APP, "marker")
    await asyncio.wait_for(hooks.node.webhooks.arrived.wait(), 5)
    assert hooks.node.webhooks.sent == [{"name": "channel_vacated", "channel": "marker"}]
    await hooks.close()


async def test_no_url_no_delay_or_no_state_sends_at_once():
    class Broken(MemoryState):
        async def hold_webhook(self, *args):
            raise ConnectionError("Redis away")

    for hooks, app in ((held(0), APP), (held(5, Broken()), APP)):
        await hooks.vacated(app, "room")
        assert hooks.node.webhooks.sent == [{"name": "channel_vacated", "channel": "room"}]
    silent = held(5)
    await silent.vacated(SimpleNamespace(id=1, webhook_url=""), "room")
    assert silent._due == type(silent._due)()  # nothing held for an app without webhooks


async def test_a_stopping_process_decides_what_it_holds_at_once():
    hooks = held(60)
    await hooks.member_removed(APP, "presence-x", "7")
    await hooks.close()
    assert hooks.node.webhooks.sent == [{"name": "member_removed", "channel": "presence-x", "user_id": "7"}]
    await hooks.vacated(APP, "late")  # after close: no hold
    assert hooks.node.webhooks.sent[-1] == {"name": "channel_vacated", "channel": "late"}
