"""Each server process persists the apps it served: when a round is due, and always at shutdown."""

import time

import pytest
from django.core.management import CommandError, call_command

from billing.metering import UsagePersister
from billing.models import HourlyUsage
from service.realtime.state.memory import MemoryState


class Hub:
    def apps(self):
        return []


class Node:
    def __init__(self):
        self.hub, self.state, self.accepting, self.stopping = Hub(), MemoryState(), True, False


@pytest.fixture
def served(alice_app):
    """A node whose state counted 3 messages for Alice's app, and a persister that saw the app."""
    node = Node()
    persister = UsagePersister(node, every=3600)
    persister.note(alice_app.id, "published", {})
    return node, persister


@pytest.mark.django_db(transaction=True)
async def test_nothing_is_written_before_a_round_is_due(served, alice_app):
    node, persister = served
    await node.state.add_usage(alice_app.id, int(time.time()) // 3600, 3, 6, 60)
    await persister.after_flush()
    assert not await HourlyUsage.objects.filter(app_id=alice_app.id).aexists()


@pytest.mark.django_db(transaction=True)
async def test_a_draining_node_still_persists_only_when_due(served, alice_app):
    node, persister = served
    await node.state.add_usage(alice_app.id, int(time.time()) // 3600, 3, 6, 60)
    node.accepting = False  # a drain takes no new sockets but goes on flushing every second
    await persister.after_flush()
    assert not await HourlyUsage.objects.filter(app_id=alice_app.id).aexists()


@pytest.mark.django_db(transaction=True)
async def test_a_stopping_node_persists_its_last_readings(served, alice_app):
    node, persister = served
    await node.state.add_usage(alice_app.id, int(time.time()) // 3600, 3, 6, 60)
    node.accepting, node.stopping = False, True  # Node.stop() flushes once more after this
    await persister.after_flush()
    row = await HourlyUsage.objects.aget(app_id=alice_app.id)
    assert (row.messages, row.deliveries, row.bytes, row.source) == (3, 6, 60, node.state.usage_source)


def test_rollup_command_explains_embedded_mode(db, settings):
    settings.REDIS_URL = ""
    with pytest.raises(CommandError, match="needs REDIS_URL"):
        call_command("rollup_usage")
