"""Fair fan-out: one tenant's big broadcast does not hold another tenant's message behind it,
messages of one app stay in order, and the backlog of waiting deliveries is bounded."""

import asyncio

from service.realtime import hub as hub_module
from service.realtime.hub import Hub


class Socket:
    """What the hub needs of a connection; records what it was sent and when."""

    log: list = []  # (socket_id, frame), across sockets, in the order written

    def __init__(self, socket_id: str, tabs: int = 1):
        self.socket_id, self.tabs, self.app = socket_id, tabs, None
        self.frames: list[str] = []

    def send(self, frame: str, wire: bytes | None = None) -> None:
        self.frames.append(frame)
        Socket.log.append((self.socket_id, frame))


def subscribe_many(hub: Hub, app_id: int, channel: str, n: int, prefix: str) -> list[Socket]:
    sockets = [Socket(f"{prefix}.{i}") for i in range(n)]
    for socket in sockets:
        hub.subscribe(app_id, channel, socket)
    return sockets


async def drained(hub: Hub) -> None:
    await hub.wait_backlog_below(1)
    while hub.backlog:  # the last round's bookkeeping
        await asyncio.sleep(0)


async def test_a_small_tenant_is_not_held_behind_a_big_broadcast():
    Socket.log = []
    hub = Hub()
    big = subscribe_many(hub, 1, "everyone", 5_000, "a")
    (small,) = subscribe_many(hub, 2, "room", 1, "b")
    hub.broadcast(1, "everyone", "A1")
    await asyncio.sleep(0)  # the fan-out task has started writing A1
    hub.broadcast(2, "room", "B1")  # another tenant's message, published meanwhile
    await drained(hub)
    assert all(socket.frames == ["A1"] for socket in big) and small.frames == ["B1"]
    position = Socket.log.index(("b.0", "B1"))
    # B1 went out after at most one slice of A1, not after all 5,000 sockets.
    assert position <= hub_module.SLICE * 2, position


async def test_messages_of_one_app_stay_in_order_on_every_socket():
    Socket.log = []
    hub = Hub()
    crowd = subscribe_many(hub, 1, "crowd", 1_000, "a")
    few = subscribe_many(hub, 1, "few", 3, "f")
    for socket in few:  # sockets in both channels
        hub.subscribe(1, "crowd", socket)
    hub.broadcast(1, "crowd", "c1")
    hub.broadcast(1, "few", "f1")  # small, but its app has fan-out waiting: it queues behind c1
    hub.broadcast(1, "crowd", "c2", except_socket="a.7")
    await drained(hub)
    for socket in few:
        assert socket.frames == ["c1", "f1", "c2"]
    assert crowd[7].frames == ["c1"] and crowd[8].frames == ["c1", "c2"]
    traffic = hub.take_traffic()[1]
    assert traffic.deliveries == 1_003 + 3 + 1_002


async def test_the_backlog_is_bounded_for_a_publisher_that_outruns_the_process():
    hub = Hub()
    subscribe_many(hub, 1, "everyone", 2_000, "a")
    limit = 10_000
    most = 0
    for n in range(40):  # what the broker does: stop taking messages while the backlog is large
        await hub.wait_backlog_below(limit)
        hub.broadcast(1, "everyone", f"m{n}")
        most = max(most, hub.backlog)
    assert most < limit + 2_000
    await drained(hub)
    assert hub.backlog == 0


async def test_small_channels_are_written_at_once():
    hub = Hub()
    sockets = subscribe_many(hub, 1, "room", hub_module.SOLO_SLICE, "a")
    assert hub.broadcast(1, "room", "now") == hub_module.SOLO_SLICE
    assert all(socket.frames == ["now"] for socket in sockets)  # synchronously, no task involved
    assert hub.backlog == 0


async def test_slices_are_short_only_while_another_app_could_wait():
    """Alone in the process, an app's broadcast is written in long rounds (fewer trips through the
    event loop); once another app has subscribers here, in short ones (it waits at most one)."""
    hub = Hub()
    crowd = subscribe_many(hub, 1, "crowd", hub_module.SOLO_SLICE, "a")
    hub.broadcast(1, "crowd", "alone")
    assert hub.backlog == 0 and all(socket.frames == ["alone"] for socket in crowd)

    (neighbour,) = subscribe_many(hub, 2, "room", 1, "b")
    hub.broadcast(1, "crowd", "beside")
    assert hub.backlog == hub_module.SOLO_SLICE  # queued for the fan-out task, not written inline
    await asyncio.sleep(0)  # one round
    assert hub.backlog == hub_module.SOLO_SLICE - hub_module.SLICE
    await drained(hub)
    assert all(socket.frames == ["alone", "beside"] for socket in crowd)

    hub.unsubscribe(2, "room", neighbour)  # the neighbour left: long rounds again
    hub.broadcast(1, "crowd", "alone again")
    assert hub.backlog == 0 and crowd[-1].frames[-1] == "alone again"
