"""How big each measurement is: the full run and the seconds-long smoke run."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    fanout_subscribers: tuple[int, ...] = (1000, 5000)
    idle_connections: int = 5000  # RSS per idle connection; also the latency and scaling size
    latency_seconds: float = 5.0
    burst: int = 2000
    publish_seconds: float = 3.0
    # Each fan-out run sends enough messages to last about this long (calibrated per server),
    # between min_messages and max_messages.
    fanout_seconds: float = 2.0
    min_messages: int = 3
    max_messages: int = 200
    repeats: int = 3  # fan-out runs per size; the median is reported
    probe_timeout: float = 20.0  # the first run of each size; a slower server gets only that run
    generator_workers: int = 4
    publish_concurrency: int = 32  # in-flight signed HTTP publishes when measuring publishes/s (one per socket)


FULL = Profile("full")
SMALL = Profile("small", fanout_subscribers=(20, 50), idle_connections=50, latency_seconds=1.0, burst=40,
                publish_seconds=0.5, fanout_seconds=0.2, min_messages=2, max_messages=20, repeats=1, probe_timeout=10.0,
                generator_workers=2, publish_concurrency=2)
