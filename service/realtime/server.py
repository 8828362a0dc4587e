"""Run the ASGI app under uvicorn (default) or daphne with Tabcast's production settings.

uvicorn shuts WebSockets down with 1012 *before* the ASGI lifespan shutdown runs, and
pusher-js waits a second before reconnecting on 1012. So on SIGTERM we first close every
socket ourselves with 4200 (reconnect immediately), then let uvicorn finish.

``--workers N`` runs N such servers on one listening socket, each with its own Node; they
share state and fan-out through Redis.
"""

import asyncio
import logging

import uvicorn
from uvicorn.supervisors import multiprocess

from .node import current_node

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096  # a burst of reconnects (a deploy, a network blip) must not drop SYNs


class TabcastServer(uvicorn.Server):
    async def shutdown(self, sockets=None):
        node = current_node()
        if node is not None:
            try:
                await asyncio.wait_for(node.stop(), 5)
            except Exception:  # noqa: BLE001 - still shut down
                log.exception("node shutdown failed")
        await super().shutdown(sockets)


def uvicorn_config(host: str, port: int, workers: int = 1, **extra) -> uvicorn.Config:
    return uvicorn.Config(
        "service.asgi:application",
        host=host, port=port, workers=workers,
        loop="uvloop", http="httptools",
        ws="service.realtime.ws_protocol:LeanWebSocketProtocol",  # websockets-sansio, less memory per socket
        # permessage-deflate costs ~11x CPU per frame and ~50 KiB per socket; Pusher clients
        # send small JSON frames, so it stays off.
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,
        ws_ping_interval=None,  # Pusher pings in the protocol (pusher:ping); no extra control frames
        lifespan="on", access_log=False, log_level="warning",
        timeout_graceful_shutdown=10,
        backlog=LISTEN_BACKLOG,
        **extra,
    )


class TabcastWorker(multiprocess.Process):
    """One ``--workers`` process: a TabcastServer (own Node, 4200 on SIGTERM) on the shared socket."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = TabcastServer(config=self.config)
        return self._server


def run_uvicorn(host: str, port: int, workers: int = 1) -> None:
    config = uvicorn_config(host, port, workers)
    if workers > 1:
        # uvicorn's supervisor (health checks, restarts of dead workers, SIGTERM to all) builds
        # each worker from this module-level name; this parent process only supervises.
        multiprocess.Process = TabcastWorker
        multiprocess.Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        TabcastServer(config=config).run()


def run_daphne(host: str, port: int) -> None:
    from daphne.cli import CommandLineInterface

    # A Twisted endpoint string instead of -b/-p: those listen with Twisted's backlog of 50,
    # which drops SYNs in a burst of reconnects (the bench's 2,000 connects lost some).
    interface = host.strip("[]").replace(":", r"\:")
    endpoint = f"tcp:port={port}:interface={interface}:backlog={LISTEN_BACKLOG}"
    CommandLineInterface().run(["-e", endpoint, "--verbosity", "0", "service.asgi:application"])
