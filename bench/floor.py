"""The machine's floor for one broadcast: ``send()`` of the same 130 bytes to N loopback sockets.

No WebSocket framing, no event loop, no Python objects per socket beyond the socket: one
syscall per subscriber, which is what every server here ends up doing per delivery. On
loopback each ``send()`` also runs the receiver's TCP input on the sender's core, so this is
the least time any single process needs to get one message to its last subscriber, i.e. a
lower bound on the latency of the last deliveries (the p99 row).

Run as ``python -m bench.floor --count N [--sender-cpus 0] [--receiver-cpus 1]``; prints JSON.
The receiver (a forked process draining with epoll) acknowledges each complete broadcast over a
pipe before the next one starts, so broadcasts never overlap.
"""

import argparse
import json
import os
import select
import socket
import statistics
import time

PAYLOAD = b"x" * 130


def _receive(port: int, count: int, rounds: int, ack_fd: int) -> None:
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    poller = select.epoll()
    for sock in sockets:
        poller.register(sock.fileno(), select.EPOLLIN)
    per_round, received = count * len(PAYLOAD), 0
    for _ in range(rounds):
        while received < per_round:
            for fd, _ in poller.poll():
                received += len(os.read(fd, 65536))
        received -= per_round
        os.write(ack_fd, b".")


def measure(count: int, rounds: int = 15, sender_cpus=None, receiver_cpus=None) -> dict:
    listener = socket.create_server(("127.0.0.1", 0), backlog=count)
    ack_read, ack_write = os.pipe()
    child = os.fork()
    if child == 0:  # the receiver
        try:
            if receiver_cpus:
                os.sched_setaffinity(0, receiver_cpus)
            _receive(listener.getsockname()[1], count, rounds, ack_write)
        finally:
            os._exit(0)
    if sender_cpus:
        os.sched_setaffinity(0, sender_cpus)
    subscribers = []
    for _ in range(count):
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio/uvloop set it
        subscribers.append(sock)
    wall, cpu = [], []
    for _ in range(rounds):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for sock in subscribers:
            sock.send(PAYLOAD)
        wall.append(time.perf_counter() - wall0)
        cpu.append(time.process_time() - cpu0)
        os.read(ack_read, 1)  # the receiver has everything: the next broadcast starts clean
    os.waitpid(child, 0)
    return {"count": count, "wall_ms": statistics.median(wall) * 1e3, "cpu_ms": statistics.median(cpu) * 1e3,
            "us_per_send": statistics.median(cpu) / count * 1e6}


def _cpus(text: str | None):
    return {int(cpu) for cpu in text.split(",")} if text else None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sender-cpus")
    parser.add_argument("--receiver-cpus")
    args = parser.parse_args()
    print(json.dumps(measure(args.count, args.rounds, _cpus(args.sender_cpus), _cpus(args.receiver_cpus))))
