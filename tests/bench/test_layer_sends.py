"""The channel-layer benches (bench/layers.py, bench/redis_cost.py) send through one helper."""

import asyncio

from bench.redis_cost import send_round_robin


class _Sender:
    """A LayerBroker stand-in: records each send and how many were in flight at once."""

    def __init__(self):
        self.sent = []
        self.active = self.peak = 0

    async def send(self, group: str, message: dict) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0)  # a yield, as a real send awaits the network: the others may start
        self.sent.append((group, message))
        self.active -= 1


async def test_messages_go_round_robin_over_the_groups_at_most_in_flight_at_once():
    sender = _Sender()
    await send_round_robin(sender, ["g0", "g1", "g2"], "FRAME", 10, 4)
    assert sorted(sender.sent, key=lambda s: s[1]["i"]) == [
        (f"g{i % 3}", {"type": "tc.publish", "frame": "FRAME", "i": i}) for i in range(10)]
    assert sender.peak == 4
