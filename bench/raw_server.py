"""Baseline (a): the Python limit. A bare ``websockets`` server that broadcasts each frame.

Subscribers connect to ``/sub``; every text frame a client sends on ``/pub`` goes to all
subscribers with ``websockets.broadcast()`` (one synchronous write per socket, no task per
send). Compression and keepalive pings are off, as in Tabcast's server config.
"""

import argparse
import asyncio

import uvloop
from websockets.asyncio.server import broadcast, serve

subscribers = set()


async def handler(ws):
    if ws.request.path == "/pub":
        async for message in ws:
            broadcast(subscribers, message)
        return
    subscribers.add(ws)
    try:
        await ws.wait_closed()
    finally:
        subscribers.discard(ws)


async def main(host: str, port: int) -> None:
    async with serve(handler, host, port, compression=None, ping_interval=None, backlog=4096):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(main(args.host, args.port))
