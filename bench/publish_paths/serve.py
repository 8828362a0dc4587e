"""Tabcast's uvicorn settings with another ASGI app: ``python -m bench.publish_paths.serve PORT APP``."""

import sys

import django

django.setup()

from service.realtime.server import TabcastServer, uvicorn_config  # noqa: E402

config = uvicorn_config("127.0.0.1", int(sys.argv[1]))
config.app = sys.argv[2]
TabcastServer(config=config).run()
