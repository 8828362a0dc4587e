"""Hold back ``channel_vacated`` and ``member_removed`` webhooks (Pusher's "webhook request delay").

A page reload unsubscribes and subscribes again within a second. Pusher then sends neither
``channel_vacated`` nor the ``channel_occupied`` after it (likewise ``member_removed`` then
``member_added``): a leave webhook waits ``TABCAST_WEBHOOK_LEAVE_DELAY`` seconds (default 3)
and a return within that time cancels both.

Cluster-wide. Which process sees a channel empty or occupied again is decided by the state's
cluster-wide counts, but the two events may happen on different processes, so the "held"
mark lives in the state too (``hold_webhook`` / ``release_webhook``, a Redis key in Redis mode;
releasing is atomic, one caller wins):

* leave (count 0, or a user's last connection): mark ``vacated:<channel>`` (or
  ``removed:<channel>:<user>``) held, and look again after the delay;
* return (count 1, or a user's first connection): if the mark can be released, a leave is
  pending (on any process): send nothing; else send occupied/added at once;
* after the delay, the process that held it releases its mark; if it was still there and the
  channel is still empty (the user still absent) it sends vacated/removed. A mark already
  released means a return cancelled it: nothing is sent. A mark held again by a later leave
  (return, then leave again, maybe on another process) is that leave's: the older hold leaves
  it alone, and the later one's own delay decides.

So a quick leave+return sends nothing, a real leave sends one webhook ``delay`` seconds late,
and whatever the interleaving the backend's last word matches the channel. In the narrowest
race (a return on another process between the leave's count reaching 0 and its mark being
written) the return sends ``channel_occupied`` and the expired hold, finding the channel
occupied, sends nothing: the backend sees occupied twice, never a vacated that is not true.
If the state is unreachable the webhook is sent without delay. A stopping process decides its
pending leaves at once (the backend must not think a channel occupied forever). Marks expire on
their own (a process that died holding one: a return within their ttl still sends nothing,
which is right, since its vacated was never sent).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from .state import user_key

if TYPE_CHECKING:
    from .node import Node
    from .tenancy import AppInfo

log = logging.getLogger(__name__)

BATCH = 200  # held webhooks decided at once when many fall due together (a mass disconnect)


class HeldWebhooks:
    def __init__(self, node: Node, delay: float) -> None:
        self.node = node
        self.delay = max(float(delay), 0.0)
        # (due, app, key, event, hold token), in due order: the delay is constant
        self._due: deque[tuple[float, AppInfo, str, dict, str]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._deciding: asyncio.Future | None = None  # the batch being decided
        self._closing = False

    # --- the node's four events ---

    async def occupied(self, app: AppInfo, channel: str) -> None:
        await self._returned(app, f"vacated:{channel}", {"name": "channel_occupied", "channel": channel})

    async def vacated(self, app: AppInfo, channel: str) -> None:
        await self._left(app, f"vacated:{channel}", {"name": "channel_vacated", "channel": channel})

    async def member_added(self, app: AppInfo, channel: str, user_id: Any) -> None:
        await self._returned(app, f"removed:{channel}:{user_key(user_id)}",
                             {"name": "member_added", "channel": channel, "user_id": user_id})

    async def member_removed(self, app: AppInfo, channel: str, user_id: Any) -> None:
        await self._left(app, f"removed:{channel}:{user_key(user_id)}",
                         {"name": "member_removed", "channel": channel, "user_id": user_id})

    # ---

    def _holding(self, app: AppInfo) -> bool:
        return self.delay > 0 and bool(app.webhook_url) and not self._closing  # stopping: no new holds

    async def _returned(self, app: AppInfo, key: str, event: dict) -> None:
        if self._holding(app):
            try:
                if await self.node.state.release_webhook(app.id, key):
                    return  # a leave is pending: it and this return cancel out
            except Exception:  # noqa: BLE001 - state away: send it (a duplicate beats a lost one)
                log.warning("could not check held webhooks of app %s", app.id, exc_info=True)
        self.node.webhooks.send(app, event)

    async def _left(self, app: AppInfo, key: str, event: dict) -> None:
        if not self._holding(app):
            self.node.webhooks.send(app, event)
            return
        try:
            # The mark outlives the wait (a slow loop, a busy Redis); the holder always releases it.
            token = await self.node.state.hold_webhook(app.id, key, 2 * self.delay + 10)
        except Exception:  # noqa: BLE001 - state away: no hold, send it now
            log.warning("could not hold a webhook of app %s; sending it now", app.id, exc_info=True)
            self.node.webhooks.send(app, event)
            return
        self._due.append((self.node.loop.time() + self.delay, app, key, event, token))
        if self._task is None and not self._closing:
            self._task = self.node.loop.create_task(self._run())
        self._wake.set()

    async def _decide(self, app: AppInfo, key: str, event: dict, token: str) -> None:
        """The delay is over: send the leave if nobody came back meanwhile."""
        state = self.node.state
        try:
            # Only this hold's mark: after a return and a new leave, the mark is that leave's (its
            # own delay decides it), so this older one sends nothing.
            if not await state.release_webhook(app.id, key, token):
                return  # a return released it: neither webhook is sent
            if event["name"] == "channel_vacated":
                gone = await state.subscription_count(app.id, event["channel"]) == 0
            else:
                gone = user_key(event["user_id"]) not in await state.members(app.id, event["channel"])
        except Exception:  # noqa: BLE001 - cannot tell: send it
            log.warning("could not decide a held webhook of app %s; sending it", app.id, exc_info=True)
            gone = True
        if gone:
            self.node.webhooks.send(app, event)

    async def _run(self) -> None:
        loop = self.node.loop
        while not self._closing:
            if not self._due:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._due[0][0] - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            batch = []
            while self._due and self._due[0][0] <= loop.time() and len(batch) < BATCH:
                batch.append(self._due.popleft())
            self._deciding = asyncio.gather(*(self._decide(*held) for _, *held in batch))
            try:
                await asyncio.shield(self._deciding)  # close() lets a batch in hand finish
            finally:
                self._deciding = None

    async def close(self) -> None:
        """Decide what is still held now (a stopping process), before the state closes."""
        self._closing = True
        if self._deciding is not None:
            await asyncio.wait([self._deciding])
        if self._task is not None:
            self._task.cancel()
            self._task = None
        pending, self._due = list(self._due), deque()
        for index in range(0, len(pending), BATCH):
            await asyncio.gather(*(self._decide(*held) for _, *held in pending[index:index + BATCH]))
