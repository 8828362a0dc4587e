"""Run the ASGI app under uvicorn (default) or daphne with Tabcast's production settings.

uvicorn shuts WebSockets down with 1012 *before* the ASGI lifespan shutdown runs, and
pusher-js waits a second before reconnecting on 1012. So on SIGTERM we first close every
socket ourselves with 4200 (reconnect immediately), then let uvicorn finish.

``--workers N`` runs N such servers on one port, each with its own Node and its own
``SO_REUSEPORT`` listening socket; they share state and fan-out through Redis.
"""

import asyncio
import gc
import logging
import socket
from importlib import import_module

import uvicorn
from uvicorn.supervisors import multiprocess

from .node import current_node

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096  # a burst of reconnects (a deploy, a network blip) must not drop SYNs


def freeze_loaded_objects() -> None:
    """Keep the garbage collector off everything the process loaded at start (Django, the app).

    The collector's full passes walk every tracked object; with the code and settings of a
    Django project counted in, that was ~25% of the server's CPU per connect in a burst of
    2,000 connects (bench: ~345 -> ~260 µs per connect). ``gc.freeze()`` moves them to a
    generation it never walks. The thresholds stay CPython's: raising them cut a little more
    CPU but let closed sockets' garbage cycles pile up (+60 MB over 20,000 connects).
    """
    gc.freeze()


class TabcastServer(uvicorn.Server):
    async def startup(self, sockets=None):
        freeze_loaded_objects()  # in each process, after uvicorn imported the app
        await super().startup(sockets)

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
    """One ``--workers`` process: a TabcastServer (own Node, 4200 on SIGTERM) on its own socket.

    uvicorn gives every worker the same listening socket; then whichever worker wakes first
    accepts a whole burst of connects (the bench saw all 32 keep-alive publishers on one of two
    workers). Each worker here listens on its own ``SO_REUSEPORT`` socket on the shared port, so
    the kernel spreads new connections over the workers.
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]):
        self._socket = reuseport_socket(config.host, config.port)
        super().__init__(config, [self._socket])

    def start(self) -> None:
        super().start()
        # The worker has inherited it. A copy kept here would stay in the port's group after
        # the worker dies, and the kernel would keep handing it connections nobody accepts.
        self._socket.close()

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = TabcastServer(config=self.config)
        return self._server


def reuseport_socket(host: str, port: int) -> socket.socket:
    host = host.strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_uvicorn(host: str, port: int, workers: int = 1) -> None:
    config = uvicorn_config(host, port, workers)
    if workers > 1:
        try:
            reuseport_socket(host, port).close()  # fail now, clearly, if the port is taken
        except OSError as exc:
            raise SystemExit(f"Cannot listen on {host}:{port}: {exc}") from None
        # uvicorn's supervisor (health checks, restarts of dead workers, SIGTERM to all) builds
        # each worker from this module-level name; this parent process only supervises.
        multiprocess.Process = TabcastWorker
        multiprocess.Multiprocess(config, sockets=[]).run()
    else:
        TabcastServer(config=config).run()


def run_daphne(host: str, port: int) -> None:
    from daphne.cli import CommandLineInterface

    # A Twisted endpoint string instead of -b/-p: those listen with Twisted's backlog of 50,
    # which drops SYNs in a burst of reconnects (the bench's 2,000 connects lost some).
    interface = host.strip("[]").replace(":", r"\:")
    endpoint = f"tcp:port={port}:interface={interface}:backlog={LISTEN_BACKLOG}"
    import_module("service.asgi")  # what daphne loads, imported first so it can be frozen
    freeze_loaded_objects()
    CommandLineInterface().run(["-e", endpoint, "--verbosity", "0", "service.asgi:application"])
