import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from service.realtime.internals import ServerInternalsError, check_server_internals
from service.realtime.metrics import prepare_multiprocess_dir
from service.realtime.server import run_daphne, run_uvicorn


class Command(BaseCommand):
    help = "Run Tabcast (HTTP API, dashboard and WebSockets) with the production ASGI server."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1,
                            help="processes sharing the port (needs REDIS_URL when > 1)")
        parser.add_argument("--reuse-port", action="store_true", default=settings.TABCAST["REUSE_PORT"],
                            help="listen with SO_REUSEPORT so separately started serves share the port "
                                 "(rolling restarts on one host; needs REDIS_URL; env TABCAST_REUSE_PORT)")
        parser.add_argument("--server", dest="server_name", choices=["uvicorn", "daphne"], default="uvicorn",
                            help="uvicorn is the default: faster in bench/ (see bench/RESULTS.md)")

    def handle(self, *args, host, port, workers, server_name, reuse_port, **options):
        if workers > 1 and not settings.REDIS_URL:
            raise CommandError("--workers > 1 needs REDIS_URL: the processes share state through Redis.")
        if reuse_port and not settings.REDIS_URL:
            raise CommandError("--reuse-port needs REDIS_URL: the processes sharing the port share state through Redis.")
        if server_name == "daphne" and workers > 1:
            raise CommandError("daphne runs one process; use --server uvicorn with --workers.")
        if server_name == "daphne" and reuse_port:
            raise CommandError("--reuse-port needs --server uvicorn.")
        try:
            # ws_protocol.py and connection.py replace/write through server internals: refuse to
            # start on package versions that lack them rather than misbehave under load.
            check_server_internals(server_name)
        except ServerInternalsError as exc:
            raise CommandError(str(exc)) from None
        # --workers N: one /metrics for the whole server (prometheus_client's multiprocess mode).
        prepare_multiprocess_dir(workers if server_name == "uvicorn" else 1)
        from service.sdk.assets import missing_sdk_message

        sdk_missing = missing_sdk_message()  # a fresh clone without npm: say so, not a silent script 503
        if sdk_missing and settings.LOG_FORMAT == "json":
            logging.getLogger("service.serve").warning(sdk_missing)
        elif sdk_missing:
            self.stderr.write(f"WARNING: {sdk_missing}")
            self.stderr.flush()
        listening = f"Tabcast listening on http://{host}:{port} ({server_name}, {workers} process(es))"
        if settings.LOG_FORMAT == "json":  # every line of the output is a JSON object (service/logs.py)
            logging.getLogger("service.serve").info(listening)
        else:
            self.stdout.write(listening)
            self.stdout.flush()
        if server_name == "daphne":
            run_daphne(host, port)
        else:
            run_uvicorn(host, port, workers, reuse_port)
