"""The measurements. Each takes a started server plus the load generator and returns numbers.

Times come from the generator's clock (epoch ms, same machine): a fan-out run lasts from
the first publish to the last delivery on any socket; latency is receive time minus the
send time embedded in each payload.
"""

import time
from dataclasses import dataclass, field

from . import procstats
from .loadgen import Publisher, Subscribers
from .profiles import Profile
from .servers import CHANNEL


@dataclass
class Measurement:
    value: float
    unit: str
    detail: dict = field(default_factory=dict)  # CPU shares, message counts, warnings


@dataclass
class Bench:
    """A started server and the load generator pointed at it."""

    target: object
    subs: Subscribers
    pub: Publisher
    profile: Profile

    def __post_init__(self):
        self.server_cpu = procstats.CpuMeter(self.target.pids)
        self.generator_cpu = procstats.CpuMeter(lambda: self.subs.pids() + [self.pub.proc.pid])

    def connect(self, count: int, channel: str | None = CHANNEL, concurrency: int = 200) -> dict:
        """Open ``count`` sockets; runs go on with those that connected (failures are reported)."""
        result = self.subs.connect(self.target.subscribe_url(), count, self.target.mode, channel, concurrency)
        if result["ok"] == 0:
            raise RuntimeError(f"{self.target.label}: none of {count} connections succeeded")
        return result

    def publish(self, count: int, **options) -> dict:
        return self.pub.publish(self.target.publish_target(), count, **options)

    def settle(self, quiet: float = 0.05, limit: float = 60) -> None:
        """Wait until the server is idle again (closing thousands of sockets takes a while, and a
        server that fell behind, like (b) at 5,000, works off its queue before the next row)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.server_cpu.start(time.monotonic())
            time.sleep(0.25)
            if self.server_cpu.stop(time.monotonic()) < quiet:
                return


def warm_up(bench: Bench) -> None:
    """A few sockets and messages so lazy imports, caches and the node exist before measuring."""
    if bench.connect(10)["failed"]:
        raise RuntimeError(f"{bench.target.label}: warm-up connections failed")
    bench.subs.reset()
    bench.publish(3)
    if not bench.subs.expect(3, timeout=30)["complete"]:
        raise RuntimeError(f"{bench.target.label}: warm-up messages were not delivered")
    bench.subs.close()
    bench.settle()


def idle_rss(bench: Bench, count: int) -> Measurement:
    """Server RSS growth per connected, subscribed, idle socket (leaves them connected)."""
    before = procstats.rss_bytes(bench.target.pids())
    connected = bench.connect(count)
    bench.settle()
    after = procstats.rss_bytes(bench.target.pids())
    detail = {"rss_before_mib": before / 2**20, "rss_after_mib": after / 2**20}
    if connected["failed"]:
        detail["incomplete"] = f"{connected['failed']} of {count} connections failed"
    return Measurement((after - before) / connected["ok"] / 1024, "KiB", detail)


def _fanout_run(bench: Bench, subscribers: int, messages: int, timeout: float) -> Measurement:
    bench.subs.reset()
    bench.settle()
    start = time.monotonic()
    bench.server_cpu.start(start)
    bench.generator_cpu.start(start)
    sent = bench.publish(messages)
    done = bench.subs.expect(messages, timeout=timeout)
    end = time.monotonic()
    seconds = (done["t_last"] - sent["t_first"]) / 1000
    detail = {"messages": messages, "seconds": seconds, "server_cpu": bench.server_cpu.stop(end),
              "generator_cpu": bench.generator_cpu.stop(end), "publish_errors": sent["errors"],
              # CPU per delivery barely moves when other work shares the core; wall-clock rates do.
              "server_us_per_delivery": bench.server_cpu.used / max(done["received"], 1) * 1e6}
    if not done["complete"]:
        detail["incomplete"] = f"{done['received']} of {messages * subscribers} delivered"
    return Measurement(done["received"] / seconds, "deliveries/s", detail)


def fanout(bench: Bench, subscribers: int) -> Measurement:
    """Deliveries/s of one channel with ``subscribers`` sockets already connected (median run)."""
    profile = bench.profile
    probe = _fanout_run(bench, subscribers, profile.min_messages, timeout=profile.probe_timeout)
    if "incomplete" in probe.detail or probe.detail["seconds"] > 3 * profile.fanout_seconds:
        probe.detail["runs"] = [round(probe.value)]  # too slow to repeat within the time budget
        return probe
    messages = round(probe.value * profile.fanout_seconds / subscribers)
    messages = max(profile.min_messages, min(profile.max_messages, messages))
    timeout = 10 + 5 * messages * subscribers / probe.value
    runs = sorted((_fanout_run(bench, subscribers, messages, timeout) for _ in range(profile.repeats)),
                  key=lambda run: run.value)
    median = runs[len(runs) // 2]
    median.detail["runs"] = [round(run.value) for run in runs]
    return median


def latency(bench: Bench, subscribers: int, max_deliveries: float) -> dict[str, Measurement]:
    """Publish->deliver latency at half of the measured maximum, ``subscribers`` connected.

    Empty when a single broadcast takes longer than a second at full speed: then "half of
    the maximum rate" is one message every few seconds and the run would not fit the budget.
    """
    if subscribers / max_deliveries > 1:
        return {}
    rate = 0.5 * max_deliveries / subscribers
    count = max(3, round(rate * bench.profile.latency_seconds))
    bench.subs.reset(latency=True)
    bench.settle()
    sent = bench.publish(count, rate=rate, concurrency=4)
    done = bench.subs.expect(count, timeout=60 + count / rate)
    samples = sorted(bench.subs.stats()["latencies"])
    detail = {"rate_msgs_s": rate, "messages": count, "samples": len(samples), "late_publishes": sent["late"]}
    if not done["complete"]:
        detail["incomplete"] = f"{done['received']} of {count * subscribers} delivered"
    quantile = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    return {"p50": Measurement(quantile(0.50), "ms", detail), "p99": Measurement(quantile(0.99), "ms", detail),
            "max": Measurement(samples[-1], "ms", detail)}


def connect_rate(bench: Bench, count: int) -> Measurement:
    """Connects/s for a burst of ``count`` sockets opened at once (Pusher: until connection_established)."""
    bench.settle()
    start = time.monotonic()
    bench.server_cpu.start(start)
    bench.generator_cpu.start(start)
    result = bench.connect(count, channel=None, concurrency=count)
    end = time.monotonic()
    seconds = (result["t_end"] - result["t_start"]) / 1000
    detail = {"seconds": seconds, "server_cpu": bench.server_cpu.stop(end),
              "generator_cpu": bench.generator_cpu.stop(end),
              "server_us_per_connect": bench.server_cpu.used / max(result["ok"], 1) * 1e6}
    if result["failed"]:
        detail["incomplete"] = f"{result['failed']} of {count} connections failed"
    bench.subs.close()
    return Measurement(result["ok"] / seconds, "connects/s", detail)


# Signed publishes in flight per keep-alive socket. The generator can pipeline, but uvicorn
# pauses and resumes reading for every pipelined request: 8 per socket cost the server ~50%
# more CPU per publish than one per socket (same 32 in flight), and backends do not pipeline.
PUBLISH_PIPELINE = 1


def publish_rate(bench: Bench) -> Measurement:
    """Signed HTTP publishes/s one server process answers (one subscriber receives them)."""
    bench.connect(1)
    bench.settle()
    start = time.monotonic()
    bench.server_cpu.start(start)
    bench.generator_cpu.start(start)
    sent = bench.publish(10**7, concurrency=bench.profile.publish_concurrency, duration=bench.profile.publish_seconds,
                         pipeline=PUBLISH_PIPELINE)
    end = time.monotonic()
    bench.subs.close()
    detail = {"errors": sent["errors"], "server_cpu": bench.server_cpu.stop(end),
              "generator_cpu": bench.generator_cpu.stop(end),
              "server_us_per_publish": bench.server_cpu.used / max(sent["ok"], 1) * 1e6}
    return Measurement(sent["ok"] / ((sent["t_end"] - sent["t_first"]) / 1000), "publishes/s", detail)


NEIGHBOUR_SOCKETS = 10
NEIGHBOUR_RATE = 50.0  # publishes/s of the small tenant


class NeighbourReceiver(Subscribers):
    """The neighbour's sockets in a process of their own (``neighbour_receiver.py``), timing each
    delivery at its arrival in the socket (the kernel's timestamp) and when it was read."""

    def __init__(self):
        import queue
        import subprocess
        import sys
        import threading

        from tests.support.processes import ROOT

        from .loadgen import NodeWorker

        worker = object.__new__(NodeWorker)  # NodeWorker's JSON-lines plumbing, on a Python process
        worker.proc = subprocess.Popen([sys.executable, "-m", "bench.neighbour_receiver"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, bufsize=1, cwd=ROOT)
        worker.replies = queue.Queue()
        threading.Thread(target=worker._read, daemon=True).start()
        self.workers = [worker]

    def timings(self) -> tuple[list[float], list[float]]:
        """(read - sent, arrival - sent) of each sample since ``reset(latency=True)``, in ms, in pairs."""
        stats = self.workers[0].call("stats")
        return stats["latencies"], stats["arrivals"]


def _prioritise(pids: list[int]) -> bool:
    """Give the neighbour's client processes (every thread) the highest nice level: they stand for
    clients on other machines, so they must not queue for a core behind the big tenant's receivers.
    Not SCHED_FIFO: tried, it gave 0.87-0.93 s stalls, the kernel's real-time throttling (0.95 s
    a second): a real-time thread on the pinned core starved a thread it waited for. False where
    raising priority is not permitted."""
    import os
    from pathlib import Path

    try:
        for pid in pids:
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.setpriority(os.PRIO_PROCESS, int(task.name), -20)
    except (PermissionError, OSError):
        return False
    return True


def neighbour_latency(bench: Bench, subscribers: int, max_deliveries: float) -> dict[str, Measurement]:
    """A small tenant's publish->deliver latency beside a big one (fair fan-out, hub.py).

    Tenant B (another app) has ``NEIGHBOUR_SOCKETS`` sockets and publishes ``NEIGHBOUR_RATE``/s;
    its p99 is measured on an idle server, then while tenant A (the ``subscribers`` sockets
    already connected) publishes at half of A's measured maximum. Then A publishes flat out,
    with B going on, and A's deliveries/s are compared with its fan-out row (A alone).

    The rows are publish -> arrival in B's socket (the kernel's receive timestamp: on loopback,
    when the server wrote the frame), which the generator's load cannot move. B's sockets are in
    a process of their own (``NeighbourReceiver``) and B's publisher and receiver run at nice -20
    where permitted; the detail also has publish -> read by that process (``read_p99``) and the
    receiving side (read - arrival), so what the server does and what the generator does are
    reported apart.
    """
    import threading

    target = bench.target
    seconds = bench.profile.latency_seconds
    count = max(3, round(NEIGHBOUR_RATE * seconds))
    b_subs, b_pub = NeighbourReceiver(), Publisher()
    try:
        if b_subs.connect(target.subscribe_url(target.neighbour), NEIGHBOUR_SOCKETS, "pusher", CHANNEL, 10)["failed"]:
            raise RuntimeError("the neighbour's sockets did not connect")
        prioritised = _prioritise(b_subs.pids() + [b_pub.proc.pid])

        def b_run() -> tuple[list[float], list[float]]:
            b_subs.reset(latency=True)
            b_pub.publish(target.publish_target(target.neighbour), count, rate=NEIGHBOUR_RATE, concurrency=2)
            b_subs.expect(count, timeout=30 + seconds)
            return b_subs.timings()

        bench.settle()
        idle = b_run()
        # A at half of its maximum, B alongside.
        a_rate = 0.5 * max_deliveries / subscribers
        a_count = max(3, round(a_rate * seconds * 1.5))  # A runs a little longer than B
        bench.subs.reset()
        a_thread = threading.Thread(target=bench.publish, args=(a_count,), kwargs={"rate": a_rate, "concurrency": 4})
        a_thread.start()
        loaded = b_run()
        a_thread.join()
        bench.subs.expect(a_count, timeout=60 + a_count / a_rate)
        # A flat out, B alongside: A's throughput against its fan-out row (A alone).
        bench.settle()
        messages = max(3, round(max_deliveries * bench.profile.fanout_seconds / subscribers))
        bench.subs.reset()
        b_thread = threading.Thread(target=b_run)
        b_thread.start()
        sent = bench.publish(messages)
        done = bench.subs.expect(messages, timeout=60)
        b_thread.join()
        a_with_b = done["received"] / ((done["t_last"] - sent["t_first"]) / 1000)
    finally:
        b_subs.stop()
        b_pub.stop()

    def p99(samples: list[float]) -> float:
        samples = sorted(samples)
        return samples[min(len(samples) - 1, int(0.99 * len(samples)))] if samples else float("nan")

    def receiving(timings) -> list[float]:
        return [read - arrival for read, arrival in zip(*timings)]

    detail = {"idle_samples": len(idle[1]), "loaded_samples": len(loaded[1]), "a_rate_msgs_s": a_rate,
              "a_alone_deliveries_s": max_deliveries, "a_with_b_deliveries_s": a_with_b,
              "neighbour_client_nice": -20 if prioritised else 0,
              "read_p99_idle": p99(idle[0]), "read_p99": p99(loaded[0]),
              "receiving_side_p99_idle": p99(receiving(idle)), "receiving_side_p99": p99(receiving(loaded))}
    if len(loaded[1]) < count * NEIGHBOUR_SOCKETS or len(idle[1]) < count * NEIGHBOUR_SOCKETS:
        detail["incomplete"] = f"{len(idle[1])}/{len(loaded[1])} of {count * NEIGHBOUR_SOCKETS} samples"
    return {"neighbour_p99_idle": Measurement(p99(idle[1]), "ms", detail),
            "neighbour_p99": Measurement(p99(loaded[1]), "ms", detail),
            "neighbour_a_throughput": Measurement(a_with_b / max_deliveries, "x", detail)}
