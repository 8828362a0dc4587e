"""``python -m bench.publish_paths.serve PORT``: Tabcast's uvicorn under the settings in the environment."""

import sys

import django

django.setup()

from service.realtime.server import TabcastServer, uvicorn_config  # noqa: E402

TabcastServer(config=uvicorn_config("127.0.0.1", int(sys.argv[1]))).run()
