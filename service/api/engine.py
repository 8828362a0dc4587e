"""Calls from (sync) API views into the process's realtime node, on the server's event loop."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from asgiref.sync import async_to_sync

from service.realtime.node import Node, get_node
from service.realtime.outage import redis_outage

from .errors import BackendUnavailable

log = logging.getLogger(__name__)

BACKEND_TIMEOUT = 3.0
T = TypeVar("T")


def is_backend_failure(exc: BaseException) -> bool:
    """Redis or the network failed (answered with 503), as opposed to a bug."""
    return isinstance(exc, (OSError, asyncio.TimeoutError, ConnectionError)) \
        or type(exc).__module__.startswith("redis")


def report_backend_failure(exc: BaseException) -> None:
    """Count a request answered 503: a Redis outage is logged once (service/realtime/outage.py), not per request."""
    redis_outage.absorb(exc)


def on_node(work: Callable[[Node], Awaitable[T]]) -> T:
    """Run ``await work(node)``; a backend that fails or hangs becomes a 503, fast."""

    async def run():
        node = await get_node()
        return await asyncio.wait_for(work(node), BACKEND_TIMEOUT)

    try:
        return async_to_sync(run)()
    except Exception as exc:
        if is_backend_failure(exc):
            report_backend_failure(exc)
            unavailable = BackendUnavailable()
            unavailable.wait = 1  # DRF answers it as "Retry-After: 1"
            raise unavailable from exc
        raise
