"""``python -m bench``: start each server, measure it with the Node load generator, print the table."""

import argparse
import signal
import sys
from pathlib import Path

from . import report, runner
from .profiles import FULL, SMALL


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--small", action="store_true", help="a seconds-long smoke run (tens of sockets)")
    parser.add_argument("--only", nargs="+", choices=["raw", "naive", "uvicorn", "daphne", "scale", "redis_cost",
                                                         "recovery"],
                        help="measure only these (default: all)")
    parser.add_argument("--no-pin", action="store_true", help="let server and generator share all cores")
    parser.add_argument("--write", type=Path, metavar="FILE", help="also write the Markdown report to FILE")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every server and generator process is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    profile = SMALL if args.small else FULL
    results = runner.run(profile, set(args.only) if args.only else None, pin=not args.no_pin,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    text = report.render(results, profile)
    print(text)
    if args.write:
        args.write.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
