"""Run the naive baseline on the same ASGI server settings Tabcast uses (uvicorn or daphne)."""

import argparse
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    args = parser.parse_args()
    if args.server == "daphne":
        from daphne.cli import CommandLineInterface

        CommandLineInterface().run(["-b", args.host, "-p", str(args.port), "--verbosity", "0",
                                    "bench.naive.asgi:application"])
        return
    import uvicorn

    from service.realtime.server import uvicorn_config

    # Same loop, parser, WebSocket implementation and options as Tabcast (lifespan aside).
    config = uvicorn_config(args.host, args.port)
    config.app, config.lifespan = "bench.naive.asgi:application", "off"
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
