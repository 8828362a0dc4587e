"""Run every measurement against every server, each server started fresh, in one process."""

import json
import os
import subprocess
import sys
import time

from tests.support.processes import ROOT

from . import procstats, recovery, redis_cost, scenarios
from .loadgen import Publisher, Subscribers
from .profiles import Profile
from .servers import Tabcast, naive_channels, raw_websockets

ALL_CPUS = os.sched_getaffinity(0)


def split_cpus(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """Server and generator cores: half each when pinning (1 + 1 on a 2-core machine)."""
    cores = sorted(ALL_CPUS)
    if not pin or len(cores) < 2:
        return None, None
    half = len(cores) // 2
    return set(cores[:half]), set(cores[half:])


def targets(only: set[str] | None) -> list:
    every = {"raw": raw_websockets, "naive": naive_channels, "uvicorn": lambda: Tabcast("uvicorn"),
             "daphne": lambda: Tabcast("daphne")}
    return [make() for name, make in every.items() if not only or name in only]


class Session:
    """A started server plus fresh generator processes; stops everything on exit."""

    def __init__(self, target, profile: Profile, server_cpus, generator_cpus):
        self.target, self.profile = target, profile
        self.server_cpus, self.generator_cpus = server_cpus, generator_cpus

    def __enter__(self) -> scenarios.Bench:
        with procstats.cpus(self.server_cpus):
            try:
                self.target.start()
            except BaseException:
                self.target.stop()
                raise
        with procstats.cpus(self.generator_cpus):
            self.subs = Subscribers(self.profile.generator_workers)
            self.pub = Publisher()
        return scenarios.Bench(self.target, self.subs, self.pub, self.profile)

    def __exit__(self, *exc) -> None:
        self.subs.stop()
        self.pub.stop()
        self.target.stop()


def measure_server(target, profile: Profile, server_cpus, generator_cpus, log) -> dict:
    """The single-process rows of the table for one server."""
    results = {}
    with Session(target, profile, server_cpus, generator_cpus) as bench:
        scenarios.warm_up(bench)
        big = profile.idle_connections
        results["rss"] = scenarios.idle_rss(bench, big)
        log(f"  idle RSS: {results['rss'].value:.1f} KiB/connection")
        results[f"fanout_{big}"] = scenarios.fanout(bench, big)
        log(f"  fan-out {big}: {results[f'fanout_{big}'].value:,.0f}/s {results[f'fanout_{big}'].detail}")
        results.update({f"latency_{k}": v for k, v in
                        scenarios.latency(bench, big, results[f"fanout_{big}"].value).items()})
        if "latency_p99" in results:
            log(f"  latency p50/p99/max: {results['latency_p50'].value:.1f}/{results['latency_p99'].value:.1f}/"
                f"{results['latency_max'].value:.1f} ms {results['latency_p99'].detail}")
        if target.mode == "pusher" and "latency_p99" in results:
            results.update(scenarios.neighbour_latency(bench, big, results[f"fanout_{big}"].value))
            log(f"  neighbour p99 idle/beside {big:,}: {results['neighbour_p99_idle'].value:.1f}/"
                f"{results['neighbour_p99'].value:.1f} ms; A flat out beside B: "
                f"{results['neighbour_a_throughput'].value:.2f}x {results['neighbour_p99'].detail}")
        bench.subs.close()
        for size in profile.fanout_subscribers:
            if size != big:
                connected = bench.connect(size)
                results[f"fanout_{size}"] = scenarios.fanout(bench, size)
                if connected["failed"]:
                    results[f"fanout_{size}"].detail["incomplete"] = f"{connected['failed']} connections failed"
                log(f"  fan-out {size}: {results[f'fanout_{size}'].value:,.0f}/s {results[f'fanout_{size}'].detail}")
                bench.subs.close()
        results["connect"] = scenarios.connect_rate(bench, profile.burst)
        log(f"  connect burst {profile.burst}: {results['connect'].value:,.0f}/s {results['connect'].detail}")
        if target.mode == "pusher":
            results["publish"] = scenarios.publish_rate(bench)
            log(f"  signed HTTP publishes: {results['publish'].value:,.0f}/s {results['publish'].detail}")
    return results


def measure_scaling(profile: Profile, log) -> dict:
    """Tabcast with Redis, 1 process vs 2 (``serve --workers 2``), on all cores: fan-out with
    ``idle_connections`` subscribers, then signed HTTP publishes/s (one subscriber)."""
    size = profile.idle_connections
    results = {}
    for workers in (1, 2):
        # Every core for everyone: this process itself is pinned to the generator's cores, and
        # a child inherits its parent's mask.
        with Session(Tabcast("uvicorn", workers=workers, redis=True), profile, ALL_CPUS, ALL_CPUS) as bench:
            scenarios.warm_up(bench)
            bench.connect(size)
            fanout = results[f"scale_{workers}p"] = scenarios.fanout(bench, size)
            log(f"  {workers} process(es) + Redis, fan-out {size}: {fanout.value:,.0f}/s {fanout.detail}")
            bench.subs.close()
            publish = results[f"scale_publish_{workers}p"] = scenarios.publish_rate(bench)
            log(f"  {workers} process(es) + Redis, signed publishes: {publish.value:,.0f}/s {publish.detail}")
    return results


def measure_floor(count: int, server_cpus, generator_cpus) -> dict:
    """``floor.py`` with its sender on the server's cores and its receiver on the generator's."""
    command = [sys.executable, "-m", "bench.floor", "--count", str(count)]
    if server_cpus:
        command += ["--sender-cpus", ",".join(map(str, server_cpus)),
                    "--receiver-cpus", ",".join(map(str, generator_cpus))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True,
                          cwd=ROOT)
    return json.loads(done.stdout)


def run(profile: Profile, only: set[str] | None, pin: bool, log=print) -> dict:
    server_cpus, generator_cpus = split_cpus(pin)
    if generator_cpus:
        os.sched_setaffinity(0, generator_cpus)  # this process is part of the generator
    started = time.time()
    results: dict = {"load_before": os.getloadavg(), "pinning": (server_cpus, generator_cpus), "servers": {}}
    try:
        for target in targets(only):
            log(f"{target.label}:")
            results["servers"][target.label] = measure_server(target, profile, server_cpus, generator_cpus, log)
        if not only or {"raw", "uvicorn"} & only:
            results["floor"] = measure_floor(profile.idle_connections, server_cpus, generator_cpus)
            log(f"floor: one broadcast to {profile.idle_connections:,} loopback sockets: {results['floor']}")
        if not only or "scale" in only:
            log("scaling with Redis:")
            results["scaling"] = measure_scaling(profile, log)
        if only and "recovery" in only:  # (only when asked: ~3 min; recovery.py)
            log("recovery: channel history off vs on, resume, memory per stored message:")
            results["recovery"] = recovery.measure(profile, server_cpus, log=log)
        if only and "redis_cost" in only:  # (only when asked: it starts clusters of its own)
            log("Redis work per operation and channel-layer fan-out, one Redis vs a Redis Cluster:")
            with procstats.cpus(ALL_CPUS):  # the servers and topologies share every core
                results["redis_cost"] = redis_cost.measure(small=profile.name == "small", log=log)
    finally:
        os.sched_setaffinity(0, ALL_CPUS)
    results["load_after"] = os.getloadavg()
    results["seconds"] = time.time() - started
    return results
