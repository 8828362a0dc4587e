"""Run the ASGI app under uvicorn (default) or daphne with Tabcast's production settings.

SIGTERM drains (docs/deploy.md), in this order:

1. the node stops taking WebSockets (new ones get 4200) and ``/healthz`` answers 503
   "draining"; HTTP requests are still served, each with ``Connection: close`` (lifespan.py).
   A process listening with ``SO_REUSEPORT`` (``--workers``, ``--reuse-port``) also closes its
   listening socket now, so the kernel hands new connects to the other processes on the port;
2. open sockets get pusher:error + close 4200 (reconnect at once) in evenly spaced batches over
   ``TABCAST_DRAIN_SECONDS`` (``Node.drain``): the other processes see a stream of reconnects,
   not a herd. (uvicorn's own shutdown would close them with 1012, on which pusher-js waits a
   second, and all at once);
3. uvicorn's graceful shutdown: no more listening, HTTP requests in flight are finished and
   answered (at most ``HTTP_GRACE_SECONDS``);
4. the ASGI lifespan shutdown: ``Node.stop`` flushes metering and lets go of Redis; exit.

With daphne, the lifespan shutdown closes every socket with 4200 at once (no paced drain).

``--workers N`` runs N such servers on one port, each with its own Node and its own
``SO_REUSEPORT`` listening socket; they share state and fan-out through Redis. ``--reuse-port``
(``TABCAST_REUSE_PORT``) listens that way as a single process, so separately started ``serve``s
share a port: a host's rolling restart starts the new one before it stops the old one.

Exposed to the internet, the server also enforces (docs in README's configuration table):

- a handshake deadline (``TABCAST_HANDSHAKE_TIMEOUT``): a connection that has not sent a whole
  request, or whose WebSocket the app has not accepted, that many seconds after it opened
  (or after the first byte of its next keep-alive request) is closed
  (``ws_protocol.DeadlineHttpToolsProtocol``; daphne: its ``--websocket_connect_timeout`` and
  the HTTP channel timeout, see :func:`run_daphne`);
- the client address from ``X-Forwarded-For`` only when the peer is a trusted proxy
  (``TABCAST_TRUSTED_PROXIES``; none by default, so the headers are ignored). uvicorn's proxy
  middleware then rewrites ``scope["client"]``, which is what per-IP admission
  (``admission.py``) and Django's ``REMOTE_ADDR`` (the dashboard's login rate limit) read.
"""

import gc
import ipaddress
import logging
import math
import socket
from importlib import import_module

import uvicorn
from django.conf import settings
from uvicorn.supervisors import multiprocess

from .node import current_node

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 4096  # a burst of reconnects (a deploy, a network blip) must not drop SYNs
# Seconds uvicorn gives HTTP requests in flight after the drain (step 3 above) before cancelling
# them; a shutdown takes at most TABCAST_DRAIN_SECONDS + 2 + this + the last flush.
HTTP_GRACE_SECONDS = 10


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
        """Drain (steps 1-2 of the module docstring), then uvicorn's shutdown, which runs the rest."""
        node = current_node()
        if node is not None:
            node.accepting = False  # first: from here /healthz says "draining", new sockets get 4200
            if getattr(self.config, "reuse_port", False):
                # Out of the port's SO_REUSEPORT group now: new connects go to the other processes.
                for server in self.servers:
                    server.close()
                for sock in sockets or []:
                    sock.close()
            try:
                await node.drain(settings.TABCAST["DRAIN_SECONDS"], abort=lambda: self.force_exit)
            except Exception:  # noqa: BLE001 - still shut down (Node.stop closes what is left)
                log.exception("drain failed")
        # Listeners closed, HTTP in flight finished, then the lifespan shutdown: Node.stop().
        await super().shutdown(sockets)


def trusted_proxies(value: str | None = None) -> list[str]:
    """``TABCAST_TRUSTED_PROXIES`` as a list of addresses/networks ("*" = any peer); [] = none.

    Checked here because uvicorn silently treats a malformed entry as a literal host name that
    never matches, which would quietly switch the per-IP limits back to the proxy's address.
    """
    value = settings.TABCAST["TRUSTED_PROXIES"] if value is None else value
    entries = [item.strip() for item in value.split(",") if item.strip()]
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False) if "/" in entry else ipaddress.ip_address(entry)
        except ValueError:
            raise SystemExit(f"TABCAST_TRUSTED_PROXIES: {entry!r} is not an IP address, a network "
                             "(10.0.0.0/8) or '*'") from None
    return entries


def uvicorn_config(host: str, port: int, workers: int = 1, **extra) -> uvicorn.Config:
    proxies = trusted_proxies()
    config = uvicorn.Config(
        "service.asgi:application",
        host=host, port=port, workers=workers,
        loop="uvloop",
        # uvicorn's httptools protocol plus a deadline for the request / WebSocket handshake.
        http="service.realtime.ws_protocol:DeadlineHttpToolsProtocol",
        ws="service.realtime.ws_protocol:LeanWebSocketProtocol",  # websockets-sansio, less memory per socket
        # permessage-deflate costs ~11x CPU per frame and ~50 KiB per socket; Pusher clients
        # send small JSON frames, so it stays off.
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,
        ws_ping_interval=None,  # Pusher pings in the protocol (pusher:ping); no extra control frames
        lifespan="on", access_log=False, log_level="warning",
        log_config=None,  # uvicorn's loggers go through settings.LOGGING (TABCAST_LOG_FORMAT, redaction, floods)
        timeout_graceful_shutdown=HTTP_GRACE_SECONDS,  # after the drain: TabcastServer.shutdown
        backlog=LISTEN_BACKLOG,
        # X-Forwarded-For/-Proto only from these peers; with none, uvicorn's middleware is off
        # (its own default would trust 127.0.0.1, letting any local process pick its address).
        proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
        **extra,
    )
    # Read by DeadlineHttpToolsProtocol; an attribute of the config so --workers' processes get it.
    config.handshake_timeout = settings.TABCAST["HANDSHAKE_TIMEOUT"]
    return config


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


def run_uvicorn(host: str, port: int, workers: int = 1, reuse_port: bool = False) -> None:
    config = uvicorn_config(host, port, workers)
    # Read by TabcastServer.shutdown: a draining process leaves the port's group at once.
    config.reuse_port = reuse_port or workers > 1
    if config.reuse_port:
        try:
            sock = reuseport_socket(host, port)  # fail now, clearly, if the port is taken
        except OSError as exc:
            raise SystemExit(f"Cannot listen on {host}:{port}: {exc}") from None
        if workers == 1:
            # Another serve (the next release, during a rolling restart) may listen on the port too.
            TabcastServer(config=config).run(sockets=[sock])
            return
        sock.close()
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
    timeout = settings.TABCAST["HANDSHAKE_TIMEOUT"]
    args = ["-e", endpoint, "--verbosity", "0"]
    if timeout > 0:
        # Upgraded but not accepted (autobahn's opening handshake too); daphne's option is whole seconds.
        args += ["--websocket_connect_timeout", str(max(1, math.ceil(timeout)))]
        _daphne_http_idle_timeout(timeout)
    # No --proxy-headers: daphne would trust X-Forwarded-For from any peer. Behind a proxy, use
    # uvicorn (TABCAST_TRUSTED_PROXIES); on daphne every client is its TCP peer.
    CommandLineInterface().run([*args, "service.asgi:application"])


def _daphne_http_idle_timeout(timeout: float) -> None:
    """Twisted's HTTP channel drops a connection idle this long (default 60 s) before its request
    is complete; daphne leaves the default. It is an *idle* timeout: unlike uvicorn's deadline, a
    peer trickling a byte at a time keeps it alive (documented; uvicorn is the production server)."""
    from daphne import server as daphne_server

    base = daphne_server.HTTPFactory

    class HandshakeTimeoutHTTPFactory(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.timeOut = timeout

    daphne_server.HTTPFactory = HandshakeTimeoutHTTPFactory
