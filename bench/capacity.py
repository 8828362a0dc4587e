"""A capacity model you can check: processes, cores, Redis shards, memory and network for a
Tabcast deployment of N concurrent connections, from the bench's measured unit costs.

    .venv/bin/python -m bench.capacity               # docs/capacity.md's tables, from the unit costs
    .venv/bin/python -m bench.capacity --calibrate   # measure the unit costs RESULTS.md lacks
                                                     # (2 processes on a 3-shard cluster, ~2 min)
                                                     # and write them to bench/capacity_units.json
    .venv/bin/python -m bench.capacity --check       # 4 processes on a 3-shard cluster under a stated
                                                     # load: measured against what the model predicts

The model (``plan``) is arithmetic on unit costs (``units()``): each is a constant with the
row of bench/RESULTS.md it comes from, or a value ``--calibrate`` measured, with the phase that
measured it. Every output number of docs/capacity.md is printed by the first command.

The check runs the same kinds of work the model adds up, mixed, on 4 processes and 3 shards,
and compares the measured CPU (per process, per shard), Redis commands, memory and deliveries
with the model's prediction for exactly that load (its ``predict_run``): the ratio
measured / predicted, target 0.75-1.25. See docs/capacity.md for what it can and cannot show
on a 2-core machine.
"""

import argparse
import json
import math
import os
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
UNITS_FILE = HERE / "capacity_units.json"
RESULTS = "bench/RESULTS.md"

# ---------------------------------------------------------------------------------------------
# Unit costs
# ---------------------------------------------------------------------------------------------

# Measured by `python -m bench` (bench/RESULTS.md, "Latest run", 2026-11-29 15:58 UTC, and the
# Redis Cluster section); ``--calibrate`` measures the rest (and some of these again, on Redis).
RESULTS_UNITS = {
    "deliver_us": (10.3, "µs server CPU per delivery (one socket write)",
                   f"{RESULTS}, Latest run, 'Server CPU per operation': per delivery, fan-out 5,000, Tabcast uvicorn"),
    "deliver_1000_us": (7.8, "µs server CPU per delivery, 1,000-socket broadcasts",
                        f"{RESULTS}, Latest run, 'Server CPU per operation': per delivery, fan-out 1,000"),
    "connect_embedded_us": (310.0, "µs server CPU per connect, embedded (no Redis)",
                            f"{RESULTS}, Latest run, 'Server CPU per operation': per connect (burst of 2,000)"),
    "publish_embedded_us": (89.5, "µs server CPU per signed HTTP publish, embedded",
                            f"{RESULTS}, Latest run, 'Server CPU per operation': per signed HTTP publish"),
    "publish_redis_us": (160.4, "µs CPU per signed publish, 1 process + its redis-server",
                         f"{RESULTS}, Scaling, 'signed HTTP publishes', 1 process"),
    "rss_socket_kib": (14.2, "KiB RSS per idle socket with one subscription",
                       f"{RESULTS}, Latest run: RSS per idle connection, 5,000 conns, Tabcast uvicorn"),
    "floor_send_us": (8.7, "µs per bare send() to a loopback socket (the machine's floor)",
                      f"{RESULTS}, Latest run, floor.py line"),
    "redis_commands_publish_history": (8.0, "Redis commands per publish, history on (1 EVALSHA)",
                                       f"{RESULTS}, Redis Cluster section: signed HTTP publish, app history on"),
    "redis_commands_publish_plain": (1.0, "Redis commands per publish, history off (1 SPUBLISH)",
                                     f"{RESULTS}, Redis Cluster section: signed HTTP publish, history off"),
    "redis_commands_subscribe_new": (16.0, "Redis commands per subscribe to a channel new to the process",
                                     f"{RESULTS}, Redis Cluster section: subscribe"),
}

# Units the model needs and RESULTS.md does not have: what --calibrate measures (name -> unit).
CALIBRATED = {
    "msg_us": "µs server CPU per pub/sub message a process receives (before its socket writes)",
    "deliver_us": "µs server CPU per socket write of a received message (fitted with msg_us)",
    "publish_us": "µs CPU of the process answering a signed publish, history on (no local subscriber)",
    "publish_plain_us": "µs CPU of the process answering a signed publish, history off",
    "connect_us": "µs server CPU per connect (pusher:connection_established; Redis state write), at full pace",
    "churn_factor": "connect/subscribe cost at a process's events/s over their cost at full pace",
    "subscribe_us": "µs server CPU per subscribe to a channel the process already receives",
    "join_us": "extra µs server CPU when the process joins the channel (SSUBSCRIBE)",
    "close_us": "µs server CPU per socket closed (with its subscriptions: calibrate_subscriptions)",
    "ping_us": "µs server CPU per pusher:ping answered",
    "proc_idle_cores": "CPU (cores) of an idle process (heartbeats, sweeps, metering flushes)",
    "proc_rss_mib": "RSS (MiB) of a started process before sockets",
    "rss_socket_kib": "KiB RSS per connected socket without subscriptions (on Redis)",
    "rss_subscription_kib": "KiB RSS per subscription",
    "kernel_socket_kib": "KiB kernel memory (slab) per connected TCP socket (both ends counted once each)",
    "redis_publish_us": "µs redis-server CPU per publish, history on (the Lua script), 1 receiving process",
    "redis_publish_plain_us": "µs redis-server CPU per publish, history off (SPUBLISH), 1 receiving process",
    "redis_out_plain_us": "µs redis-server CPU per further receiving process of a publish, history off",
    "redis_out_us": "µs redis-server CPU per further receiving process of a publish",
    "redis_connect_us": "µs redis-server CPU per connect (state script over calibrate_nodes nodes)",
    "redis_subscribe_us": "µs redis-server CPU per subscribe, channel already joined (state script + history read)",
    "redis_join_us": "extra µs redis-server CPU when the process joins the channel (SSUBSCRIBE)",
    "redis_close_us": "µs redis-server CPU per socket closed (with its subscriptions)",
    "redis_idle_cores": "redis-server CPU (cores) per idle Tabcast process (heartbeats, probes)",
    "redis_cron_cores": "redis-server CPU (cores) of an idle master with no clients (its own timers)",
    "state_script_us": "µs redis-server CPU per state script (SET_AND_SUM) with one node",
    "state_script_node_us": "µs redis-server CPU per state script, per further node holding the app",
    "redis_in_bytes_publish": "bytes into Redis per publish, history on",
    "redis_out_bytes_receiver": "bytes out of Redis per receiving process of a publish",
    "history_message_bytes": "Redis memory per message kept in a channel's history",
    "history_channel_bytes": "Redis memory per channel with history (stream keys)",
    "redis_subscription_bytes": "Redis memory per (process, channel): its count entry, its pub/sub subscription",
    "redis_channel_bytes": ("Redis memory per channel subscribed anywhere, besides history "
                            "(stream epoch, pub/sub channel)"),
    "redis_clients_per_process": "client connections each Tabcast process holds to each master",
    "calibrate_nodes": "Tabcast processes holding the app while calibrating (state scripts read each)",
    "calibrate_subscriptions": "subscriptions per socket when close_us was measured",
}


@dataclass(frozen=True)
class Unit:
    value: float  # at the lowest rate measured, for a rate-dependent unit
    unit: str
    source: str
    points: tuple = ()  # ((rate per second, value), ...): a cost measured at several rates

    def at(self, rate: float | None) -> float:
        """The cost at ``rate`` (per second, per process or per master): interpolated between the
        measured rates on log-log scales; below the lowest, the lowest's, above the highest,
        the highest's (costs fall with rate, so that end is conservative)."""
        if not self.points or rate is None:
            return self.value
        pts = self.points
        if rate <= pts[0][0]:
            return pts[0][1]
        if rate >= pts[-1][0]:
            return pts[-1][1]
        for (r0, v0), (r1, v1) in zip(pts, pts[1:], strict=False):
            if r0 <= rate <= r1:
                if v0 <= 0 or v1 <= 0:
                    return v0 + (v1 - v0) * (rate - r0) / (r1 - r0)
                f = math.log(rate / r0) / math.log(r1 / r0)
                return math.exp(math.log(v0) + f * (math.log(v1) - math.log(v0)))
        return pts[-1][1]


def units(path: Path | None = UNITS_FILE) -> dict[str, Unit]:
    """RESULTS.md's constants, then the calibrated units (which take over a name both have)."""
    out = {name: Unit(v, u, s) for name, (v, u, s) in RESULTS_UNITS.items()}
    if path is not None and path.is_file():
        data = json.loads(path.read_text())
        for name, entry in data["units"].items():
            # A cost measured as a difference can come out 0 or below when it is under the counters'
            # resolution: such a point is left out (not read as "free" at and above its rate).
            measured = tuple(tuple(x) for x in entry.get("points", ()))
            points = tuple(x for x in measured if x[1] > 0) or measured
            dropped = f" (left out, under the counters' resolution: {len(measured) - len(points)} point)" \
                if len(points) < len(measured) else ""
            value = entry["value"] if "value" in entry else points[0][1]
            out[name] = Unit(value, CALIBRATED.get(name, entry.get("unit", "")),
                             f"bench/capacity_units.json ({data['measured']}): {entry['phase']}{dropped}", points)
    return out


def _need(u: dict[str, Unit], *names: str) -> None:
    missing = [n for n in names if n not in u]
    if missing:
        raise SystemExit(f"unit costs missing ({', '.join(missing)}): run `python -m bench.capacity --calibrate`")


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What the deployment carries. Every published message reaches ``fanout`` sockets."""

    name: str
    connections: int
    subscriptions: float = 3  # S: channels each connection is subscribed to
    publishes_per_1k: float = 10  # P: publishes/s per 1,000 connections (HTTP API)
    fanout: float = 100  # F: sockets one published message reaches (= subscribers per channel)
    lifetime_s: float = 1800  # a connection lasts this long on average: C / lifetime connects/s
    apps: int = 1000  # tenants the connections are spread over (each app's state is on one slot)
    history: bool = True  # the app default (docs/recovery.md): size 100, ttl 120 s
    history_size: int = 100
    history_ttl: float = 120
    frame_bytes: int = 150  # a delivered frame (the bench's ~130 B plus its position)
    activity_timeout: float = 120  # pusher-js pings after this long without a frame


@dataclass(frozen=True)
class Fleet:
    """Where the limits are: stated, not measured (docker/k8s/ and common instance sizes)."""

    process_cpu_target: float = 0.60  # the HPA's CPU target (docker/k8s/hpa.yaml): 40% headroom
    process_memory_gib: float = 1.0  # the pod's memory limit (docker/k8s/deployment.yaml)
    memory_fill: float = 0.80  # of that limit, what steady state may use
    redis_cpu_target: float = 0.50  # a shard's main thread: half, so a failover's replay and bursts fit
    redis_memory_gb: float = 12.0  # data per shard (a 16 GB node: room for fork/COW and buffers)
    redis_net_gbit: float = 5.0  # pub/sub out per shard (half of a 10 Gbit/s NIC)
    redis_replicas: int = 1  # per master (failover: docs/redis.md)
    min_shards: int = 3  # a Redis Cluster has at least 3 masters
    redis_maxclients: int = 10_000  # redis.conf default
    tcp_ip_bytes: int = 52 + 2  # TCP/IPv4 headers with timestamps + the WebSocket frame header, per delivery
    drain_seconds: float = 10.0  # TABCAST_DRAIN_SECONDS (docs/deploy.md)


def receivers(processes: float, fanout: float) -> float:
    """Processes with at least one of ``fanout`` sockets, the sockets spread at random over
    ``processes`` (a load balancer's placement): the expected count."""
    if processes <= 1:
        return 1.0
    return processes * (1 - (1 - 1 / processes) ** fanout)


def _ceil(x: float) -> int:
    return max(1, math.ceil(x - 1e-9))


def _rates(w: Workload, n: int) -> dict[str, float]:
    publishes = w.connections / 1000 * w.publishes_per_1k
    r = receivers(n, w.fanout)
    connects = w.connections / w.lifetime_s
    # A subscribe makes its process join the channel when none of the channel's other
    # subscribers is on that process.
    joins = connects * w.subscriptions * (1 - 1 / n) ** max(w.fanout - 1, 0) if n > 1 else 0.0
    return {"publishes": publishes, "receivers": r, "connects": connects, "joins": joins}


def process_cpu(w: Workload, u: dict[str, Unit], n: int) -> dict[str, float]:
    """Cores the Tabcast processes need in total, by kind of work, with ``n`` processes (the load
    balancer spreads sockets and HTTP publishes evenly)."""
    x = _rates(w, n)
    q, r = x["publishes"], x["receivers"]
    close_us = u["close_us"].value * (1 + w.subscriptions) / (1 + u["calibrate_subscriptions"].value)
    per_socket_msgs = q * w.fanout / w.connections
    pings = w.connections / w.activity_timeout * math.exp(-w.activity_timeout * per_socket_msgs)
    # The rate-dependent costs (loop wake-ups, shared by whatever arrives together) are read at
    # the events a process handles per second: publishes it answers, messages it receives,
    # connects and subscribes.
    rate = (q + q * r + x["connects"] * (1 + w.subscriptions)) / n
    return {
        "deliver": q * w.fanout * u["deliver_us"].value / 1e6,
        "receive": q * r * u["msg_us"].at(rate) / 1e6,
        "publish": q * u["publish_us" if w.history else "publish_plain_us"].at(rate) / 1e6,
        "churn": (x["connects"] * ((u["connect_us"].value + w.subscriptions * u["subscribe_us"].value)
                                   * u["churn_factor"].at(rate) + close_us) + x["joins"] * u["join_us"].value) / 1e6,
        "keepalive": pings * u["ping_us"].value / 1e6,
        "idle": n * u["proc_idle_cores"].value,
    }


def state_script_us(u: dict[str, Unit], nodes: float) -> float:
    """redis-server µs of one state script (a count write) when ``nodes`` processes hold the app."""
    return u["state_script_us"].value + max(nodes - 1, 0) * u["state_script_node_us"].value


def lifecycle_redis_us(w: Workload, u: dict[str, Unit], nodes: float) -> tuple[float, float]:
    """redis-server µs of one connection's connect + subscribes, and of its close, when ``nodes``
    processes hold its app: calibrated with ``calibrate_nodes``, the state scripts' reads of the
    other processes' keys scaled to ``nodes``."""
    extra = state_script_us(u, nodes) - state_script_us(u, u["calibrate_nodes"].value)
    up = u["redis_connect_us"].value + w.subscriptions * u["redis_subscribe_us"].value + (1 + w.subscriptions) * extra
    down = (u["redis_close_us"].value * (1 + w.subscriptions) / (1 + u["calibrate_subscriptions"].value)
            + (1 + w.subscriptions) * extra)
    return up, down


def redis_cpu(w: Workload, u: dict[str, Unit], n: int, m: int) -> dict[str, float]:
    """redis-server cores over ``m`` masters, by kind of work. Publishes spread over every master
    (by channel slot); ``state_app`` is one app's share of ``state``, which runs on that app's
    slot (one master)."""
    x = _rates(w, n)
    q, r = x["publishes"], x["receivers"]
    rate = q / m  # publishes per master
    hist = "" if w.history else "_plain"
    nodes = receivers(n, w.connections / w.apps)  # processes holding one app's sockets
    up, down = lifecycle_redis_us(w, u, nodes)
    state = x["connects"] * (up + down) / 1e6
    return {
        "publish": q * (u[f"redis_publish{hist}_us"].at(rate) + (r - 1) * u[f"redis_out{hist}_us"].at(rate)) / 1e6,
        "join": x["joins"] * u["redis_join_us"].value / 1e6,
        "state": state,
        "state_app": state / w.apps,
        "idle": n * u["redis_idle_cores"].value + m * u["redis_cron_cores"].value,
        "state_nodes": nodes,
    }


def plan(w: Workload, u: dict[str, Unit], fleet: Fleet = Fleet()) -> dict:
    """Processes, cores, Redis shards, memory and network for ``w``; and which limit set each."""
    _need(u, *[k for k in CALIBRATED if k not in RESULTS_UNITS])
    v = {k: x.value for k, x in u.items()}
    gib = 2**30
    # Processes: enough memory per pod, and enough CPU at the target utilisation. CPU per process
    # falls as processes are added (the fixed work is shared, and the receiving processes per
    # publish grow slower than the processes): binary search for the fewest that meet it.
    per_socket = (v["rss_socket_kib"] + w.subscriptions * v["rss_subscription_kib"] + v["kernel_socket_kib"]) * 1024
    room = fleet.process_memory_gib * gib * fleet.memory_fill - v["proc_rss_mib"] * 2**20
    n_mem = _ceil(w.connections / (room / per_socket))
    over = lambda k: sum(process_cpu(w, u, k).values()) / k > fleet.process_cpu_target  # noqa: E731
    low, high = 1, 1
    while over(high):
        low, high = high, high * 2
        if high > 10**7:
            raise ValueError(f"{w.name}: no number of processes keeps each under the CPU target")
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if over(mid) else (low, mid)
    n_cpu = high
    n = max(n_cpu, n_mem)
    cpu = process_cpu(w, u, n)
    x = _rates(w, n)
    q, r = x["publishes"], x["receivers"]
    # Redis masters: CPU (per-master costs depend on the per-master rate: search), memory
    # (history, subscription counts), pub/sub network out.
    apps_on_busiest = lambda m: math.ceil(w.apps / m)  # noqa: E731

    def busiest(m: int) -> float:
        c = redis_cpu(w, u, n, m)
        return (c["publish"] + c["join"] + c["idle"]) / m + c["state_app"] * apps_on_busiest(m)

    one_app = redis_cpu(w, u, n, fleet.min_shards)["state_app"]
    one_app_too_big = one_app > fleet.redis_cpu_target
    m_cpu = fleet.min_shards
    while not one_app_too_big and busiest(m_cpu) > fleet.redis_cpu_target and m_cpu < 100_000:
        m_cpu += max(1, m_cpu // 32)
    channels = w.connections * w.subscriptions / w.fanout
    kept = min(w.history_size, q / channels * w.history_ttl) if w.history else 0.0
    history_bytes = channels * (v["history_channel_bytes"] + kept * v["history_message_bytes"]) if w.history else 0.0
    counts_bytes = channels * (r * v["redis_subscription_bytes"] + v["redis_channel_bytes"])
    redis_bytes = history_bytes + counts_bytes
    m_mem = _ceil(redis_bytes / (fleet.redis_memory_gb * 1e9))
    redis_out_bits = q * r * v["redis_out_bytes_receiver"] * 8
    m_net = _ceil(redis_out_bits / (fleet.redis_net_gbit * 1e9))
    m = max(m_cpu, m_mem, m_net, fleet.min_shards)
    if m == fleet.min_shards:
        shard_limit = "minimum"
    else:
        shard_limit = "CPU" if m == m_cpu else "memory" if m == m_mem else "network"
    rcpu = redis_cpu(w, u, n, m)
    process_bytes = n * v["proc_rss_mib"] * 2**20 + w.connections * per_socket
    redis_total_bytes = redis_bytes * (1 + fleet.redis_replicas)
    deliveries = q * w.fanout
    client_bits = deliveries * (w.frame_bytes + fleet.tcp_ip_bytes) * 8
    # Connect storms: every connection reconnecting at once (a load balancer restart, a network
    # blip: pusher-js reconnects within seconds), and one process of a rolling restart draining.
    # (a storm keeps every process busy: the costs at full pace)
    connect_py_us = v["connect_us"] + w.subscriptions * v["subscribe_us"]
    up, _ = lifecycle_redis_us(w, u, rcpu["state_nodes"])
    per_app = w.connections / w.apps
    storm_redis_s = max(w.connections * up / 1e6 / m, per_app * apps_on_busiest(m) * up / 1e6)
    drain_rate = w.connections / n / fleet.drain_seconds
    return {
        "workload": asdict(w),
        "processes": n, "processes_for_cpu": n_cpu, "processes_for_memory": n_mem,
        "process_limit": "CPU" if n_cpu >= n_mem else "memory",
        "sockets_per_process": w.connections / n,
        "process_cpu": cpu, "process_cores_used": sum(cpu.values()), "cpu_per_process": sum(cpu.values()) / n,
        "receivers_per_publish": r, "local_fanout": w.fanout / r,
        "messages_per_process": q * r / n, "publishes_per_s": q, "deliveries_per_s": deliveries,
        "redis_cpu": rcpu, "redis_cores_used": rcpu["publish"] + rcpu["join"] + rcpu["idle"] + rcpu["state"],
        "shards": m, "shards_for_cpu": m_cpu, "shards_for_memory": m_mem, "shards_for_network": m_net,
        "shard_limit": shard_limit, "busiest_shard_cpu": busiest(m), "publishes_per_master": q / m,
        "one_app_state_cores": one_app, "one_app_too_big": one_app_too_big, "state_nodes": rcpu["state_nodes"],
        "redis_cores": m * (1 + fleet.redis_replicas), "cores": n + m * (1 + fleet.redis_replicas),
        "process_memory_gb": process_bytes / 1e9, "redis_memory_gb": redis_total_bytes / 1e9,
        "history_gb": history_bytes / 1e9, "memory_gb": (process_bytes + redis_total_bytes) / 1e9,
        "client_gbit": client_bits / 1e9, "redis_out_gbit": redis_out_bits / 1e9,
        "redis_out_gbit_per_shard": redis_out_bits / 1e9 / m,
        "redis_clients_per_master": n * v["redis_clients_per_process"],
        "storm_python_s": w.connections * connect_py_us / 1e6 / n, "storm_redis_s": storm_redis_s,
        "drain_connects_per_s": drain_rate, "drain_redis_cores": drain_rate * up / 1e6,
        "channels": channels, "history_messages_per_channel": kept,
    }


# The workloads of docs/capacity.md.
BASE = Workload("base", 0)
SIZES = (100_000, 1_000_000, 10_000_000)
SHAPES = {
    "base": dict(),  # S=3, 10 publishes/s per 1k connections, fan-out 100
    "chat (small rooms)": dict(fanout=5, publishes_per_1k=100),
    "broadcast (big audiences)": dict(fanout=10_000, publishes_per_1k=0.1, subscriptions=1),
    "chatty (big rooms)": dict(fanout=1000, publishes_per_1k=10),
    "one app": dict(apps=1),
}


def _n(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def headline_table(u: dict[str, Unit], fleet: Fleet = Fleet()) -> str:
    rows = [("connections", lambda p: f"{p['workload']['connections']:,}")]
    rows += [
        ("publishes/s (HTTP API)", lambda p: _n(p["publishes_per_s"])),
        ("deliveries/s", lambda p: _n(p["deliveries_per_s"])),
        ("**Tabcast processes** (= cores)", lambda p: f"**{p['processes']:,}** ({p['process_limit']})"),
        ("sockets per process", lambda p: _n(p["sockets_per_process"])),
        ("CPU per process (cores)", lambda p: f"{p['cpu_per_process']:.2f}"),
        ("receiving processes per publish", lambda p: _n(p["receivers_per_publish"])),
        ("**Redis masters** (+1 replica each)", lambda p: f"**{p['shards']}** ({p['shard_limit']})"),
        ("busiest master CPU (cores)", lambda p: f"{p['busiest_shard_cpu']:.2f}"),
        ("**cores** (processes + Redis)", lambda p: f"**{p['cores']:,}**"),
        ("**memory, GB** (processes + Redis ×2)", lambda p: f"**{p['memory_gb']:.1f}** "
                                                          f"({p['process_memory_gb']:.1f} + {p['redis_memory_gb']:.1f})"),
        ("  of which history (one copy)", lambda p: f"{p['history_gb']:.2f}"),
        ("network to clients (Gbit/s)", lambda p: f"{p['client_gbit']:.2f}"),
        ("Redis pub/sub out per master (Gbit/s)", lambda p: f"{p['redis_out_gbit_per_shard']:.2f}"),
        ("Redis clients per master", lambda p: f"{p['redis_clients_per_master']:,.0f}"),
        ("reconnect everyone: Python / Redis (s)", lambda p: f"{p['storm_python_s']:.0f} / {p['storm_redis_s']:.0f}"),
    ]
    plans = [plan(replace(BASE, name=f"{c:,}", connections=c), u, fleet) for c in SIZES]
    lines = ["| | " + " | ".join(f"{c:,}" for c in SIZES) + " |", "|---" * (len(SIZES) + 1) + "|"]
    for label, cell in rows[1:]:
        lines.append(f"| {label} | " + " | ".join(cell(p) for p in plans) + " |")
    return "\n".join(lines)


def cpu_breakdown_table(u: dict[str, Unit], fleet: Fleet = Fleet()) -> str:
    lines = ["| cores used | " + " | ".join(f"{c:,}" for c in SIZES) + " |", "|---" * (len(SIZES) + 1) + "|"]
    plans = [plan(replace(BASE, name=f"{c:,}", connections=c), u, fleet) for c in SIZES]
    for key, label in (("deliver", "Python: socket writes"), ("receive", "Python: pub/sub messages received"),
                       ("publish", "Python: HTTP publishes"), ("churn", "Python: connects, subscribes, closes"),
                       ("keepalive", "Python: pings"), ("idle", "Python: per-process background")):
        lines.append(f"| {label} | " + " | ".join(f"{p['process_cpu'][key]:.2f}" for p in plans) + " |")
    for key, label in (("publish", "Redis: publishes (script + SPUBLISH to each receiver)"),
                       ("join", "Redis: SSUBSCRIBE when a process joins a channel"),
                       ("state", "Redis: state scripts of connects, subscribes, closes"),
                       ("idle", "Redis: heartbeats of the processes")):
        lines.append(f"| {label} | " + " | ".join(f"{p['redis_cpu'][key]:.2f}" for p in plans) + " |")
    lines.append("| state scripts read this many process keys | " +
                 " | ".join(f"{p['state_nodes']:,.0f}" for p in plans) + " |")
    return "\n".join(lines)


def shapes_table(u: dict[str, Unit], fleet: Fleet = Fleet(), connections: int = 1_000_000) -> str:
    cols = list(SHAPES)
    plans = [plan(replace(BASE, name=s, connections=connections, **SHAPES[s]), u, fleet) for s in cols]
    rows = [
        ("S / P per 1k / F / apps",
         lambda p: "{subscriptions:g} / {publishes_per_1k:g} / {fanout:,g} / {apps:,}".format(**p["workload"])),
        ("deliveries/s", lambda p: _n(p["deliveries_per_s"])),
        ("processes (limit)", lambda p: f"{p['processes']:,} ({p['process_limit']})"),
        ("Python cores: writes / receives / publishes / churn",
         lambda p: " / ".join(f"{p['process_cpu'][k]:.1f}" for k in ("deliver", "receive", "publish", "churn"))),
        ("receiving processes per publish", lambda p: _n(p["receivers_per_publish"])),
        ("Redis masters (limit)", lambda p: f"{p['shards']} ({p['shard_limit']})"),
        ("Redis cores: publishes / state",
         lambda p: f"{p['redis_cpu']['publish']:.2f} / {p['redis_cpu']['state']:.2f}"),
        ("one app's state scripts (cores, on one master)",
         lambda p: f"{p['one_app_state_cores']:.3f}" + (" **> one master**" if p["one_app_too_big"] else "")),
        ("memory GB (processes + Redis)", lambda p: f"{p['process_memory_gb']:.1f} + {p['redis_memory_gb']:.1f}"),
        ("network to clients / Redis out (Gbit/s)", lambda p: f"{p['client_gbit']:.2f} / {p['redis_out_gbit']:.2f}"),
        ("reconnect everyone: Python / Redis (s)", lambda p: f"{p['storm_python_s']:.0f} / {p['storm_redis_s']:.0f}"),
    ]
    lines = ["| " + f"{connections:,} connections | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(p) for p in plans) + " |")
    return "\n".join(lines)


def units_table(u: dict[str, Unit]) -> str:
    lines = ["| unit | value (at a rate: per second, per process or per master) | source |", "|---|---|---|"]
    for name, x in sorted(u.items()):
        value = "; ".join(f"{v:,.4g} at {r:,.0f}/s" for r, v in x.points) if x.points else f"{x.value:,.4g}"
        lines.append(f"| `{name}`: {x.unit} | {value} | {x.source} |")
    return "\n".join(lines)


def one_app_limit(u: dict[str, Unit], fleet: Fleet = Fleet()) -> str:
    """The largest single app whose state scripts fit one master, for a few process counts."""
    w = replace(BASE, connections=1)
    lines = ["| processes holding the app | one state script (µs) | Redis µs per connection (S=3: connect, "
             "subscribes, close) | connects/s one master takes at 50% | connections at a 30-min lifetime |",
             "|---|---|---|---|---|"]
    for nodes in (4, 16, 64, 256, 1024):
        up, down = lifecycle_redis_us(w, u, nodes)
        rate = fleet.redis_cpu_target * 1e6 / (up + down)
        lines.append(f"| {nodes:,} | {state_script_us(u, nodes):.0f} | {up + down:,.0f} | {rate:,.0f} "
                     f"| {rate * 1800:,.0f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Running Tabcast processes on a cluster: shared by --calibrate and --check
# ---------------------------------------------------------------------------------------------


def _redis_info(port: int) -> dict:
    from tests.support.redis_topologies import redis_command

    text = redis_command(port, "INFO", "everything")
    info: dict = {"calls": {}, "usec": {}}
    for name, calls, usec in re.findall(r"cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)", text):
        info["calls"][name] = int(calls)
        info["usec"][name] = int(usec)
    for key in ("total_net_input_bytes", "total_net_output_bytes", "used_memory", "connected_clients"):
        info[key] = int(re.search(rf"{key}:(\d+)", text)[1])
    # The server's own rusage (µs resolution; /proc's ticks are 10 ms).
    info["cpu"] = sum(float(re.search(rf"^{key}:([\d.]+)", text, re.M)[1]) for key in ("used_cpu_sys", "used_cpu_user"))
    return info


def _slab_kib() -> int:
    text = Path("/proc/meminfo").read_text()
    return int(re.search(r"^Slab:\s+(\d+)", text, re.M)[1])


class Deployment:
    """``count`` ``manage.py serve`` processes sharing one database and a Redis Cluster of
    ``shards`` masters (``tests/support/redis_topologies.py``), one app created before they start."""

    def __init__(self, count: int, shards: int = 3, env: dict | None = None, measure_cron: bool = False):
        self.count, self.shards, self.env = count, shards, env or {}
        self.measure_cron = measure_cron
        self.cron = 0.0
        self.topology = None
        self.processes: list = []

    def __enter__(self) -> "Deployment":
        from tests.support.processes import TabcastProcess, temp_dir
        from tests.support.redis_topologies import ClusterTopology

        from .servers import TABCAST_BENCH_ENV

        try:
            self.topology = ClusterTopology(masters=self.shards).start()
            if self.measure_cron:  # the masters alone, before any process connects: their own timers
                ports = [m.port for m in self.topology.masters()]
                before, t0 = sum(_redis_info(port)["cpu"] for port in ports), time.monotonic()
                time.sleep(3.0)
                self.cron = (sum(_redis_info(port)["cpu"] for port in ports) - before) / len(ports) \
                    / (time.monotonic() - t0)
            var_dir = temp_dir("tabcast-capacity-")
            env = {**TABCAST_BENCH_ENV, "TABCAST_APP_CACHE_SECONDS": "1", **self.env}
            self.processes = [TabcastProcess(redis_url=self.topology.url, var_dir=var_dir, extra_env=env)
                              for _ in range(self.count)]
            self.processes[0].migrate()
            self.app = self.processes[0].create_app("capacity")
            for process in self.processes:
                process.start(migrate=False)
            self.masters = self.topology.masters()
            self.prefix = self.processes[0].env["TABCAST_REDIS_PREFIX"]
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            process.stop()
        if self.topology is not None:
            self.topology.stop()

    def urls(self) -> list[str]:
        return [f"{p.ws}/app/{self.app['key']}?protocol=7&client=capacity&version=1" for p in self.processes]

    def targets(self) -> list[dict]:
        return [{"host": "127.0.0.1", "port": p.port} for p in self.processes]

    def master_of_channel(self, channel: str) -> int:
        """Index in ``masters`` of the master serving the channel's slot (its group's hash tag)."""
        from redis.crc import key_slot

        from service.realtime.channel_names import group_name

        slot = key_slot(("{" + group_name(int(self.app["app_id"]), channel) + "}").encode())
        if not hasattr(self, "_ranges"):
            self._ranges = []
            for node in self.topology._nodes(self.masters[0]):
                if "master" in node["flags"] and node["slots"]:
                    index = next(i for i, m in enumerate(self.masters) if m.address == node["address"])
                    for part in node["slots"]:
                        if not part.startswith("["):
                            low, _, high = part.partition("-")
                            self._ranges.append((int(low), int(high or low), index))
        return next(i for low, high, i in self._ranges if low <= slot <= high)

    def snapshot(self) -> dict:
        from . import procstats

        procs = []
        for p in self.processes:
            pids = procstats.tree(p.proc.pid)
            procs.append({"cpu": procstats.cpu_seconds(pids), "rss": procstats.rss_bytes(pids)})
        redis = []
        for m in self.masters:
            redis.append(_redis_info(m.port))
        return {"t": time.monotonic(), "procs": procs, "redis": redis, "slab_kib": _slab_kib()}


def delta(a: dict, b: dict) -> dict:
    """What happened between two snapshots: CPU seconds and memory per process and per master."""
    out = {"seconds": b["t"] - a["t"], "slab_kib": b["slab_kib"] - a["slab_kib"],
           "procs": [{"cpu": y["cpu"] - x["cpu"], "rss": y["rss"] - x["rss"], "rss_after": y["rss"]}
                     for x, y in zip(a["procs"], b["procs"], strict=True)], "redis": []}
    for x, y in zip(a["redis"], b["redis"], strict=True):
        calls = {k: y["calls"][k] - x["calls"].get(k, 0) for k in y["calls"]}
        usec = {k: y["usec"][k] - x["usec"].get(k, 0) for k in y["usec"]}
        out["redis"].append({"cpu": y["cpu"] - x["cpu"], "calls": {k: c for k, c in calls.items() if c},
                             "usec": {k: c for k, c in usec.items() if c},
                             "commands": sum(calls.values()),
                             "in": y["total_net_input_bytes"] - x["total_net_input_bytes"],
                             "out": y["total_net_output_bytes"] - x["total_net_output_bytes"],
                             "memory": y["used_memory"] - x["used_memory"], "clients": y["connected_clients"]})
    return out


def _sum(d: dict, part: str, key: str) -> float:
    return sum(x[key] for x in d[part])


class Generator:
    """The Node load generator of the capacity runs: ``workers`` subscriber processes
    (bench/js/capacity_client.js) and one publisher (capacity_publisher.js)."""

    def __init__(self, workers: int = 2):
        from .loadgen import NodeWorker

        self.workers = [NodeWorker("capacity_client.js") for _ in range(workers)]
        self.publisher = NodeWorker("capacity_publisher.js")
        self.count = 0

    def _all(self, op: str, per_worker: list[dict], timeout: float) -> list[dict]:
        for worker, args in zip(self.workers, per_worker, strict=True):
            worker.send(op, **args)
        return [worker.reply(timeout) for worker in self.workers]

    def connect(self, urls: list[str], sockets: list[tuple[int, list[str]]], concurrency: int = 50,
                timeout: float = 120, rate: float = 0) -> dict:
        """Socket i goes to worker i % workers (``subscribe`` and the placement rely on it); ``rate``:
        sockets started per second (0: as fast as ``concurrency`` allows)."""
        w = len(self.workers)
        self.count += len(sockets)
        replies = self._all("connect", [{"urls": urls, "sockets": sockets[i::w], "rate": rate / w,
                                         "concurrency": max(1, concurrency // w), "timeout_ms": 30_000}
                                        for i in range(w)], timeout)
        return {**{k: sum(r[k] for r in replies) for k in ("ok", "failed", "subscribed", "refused")},
                "seconds": (max(r["t_end"] for r in replies) - min(r["t_start"] for r in replies)) / 1000}

    def subscribe(self, channels: list[list[str]], concurrency: int = 50, timeout: float = 120,
                  rate: float = 0) -> dict:
        w = len(self.workers)
        replies = self._all("subscribe", [{"channels": channels[i::w], "concurrency": max(1, concurrency // w),
                                           "rate": rate / w, "timeout_ms": 30_000} for i in range(w)], timeout)
        return {**{k: sum(r[k] for r in replies) for k in ("subscribed", "refused")},
                "seconds": (max(r["t_end"] for r in replies) - min(r["t_start"] for r in replies)) / 1000}

    def pids(self) -> list[int]:
        return [w.proc.pid for w in (*self.workers, self.publisher)]

    def reset(self) -> None:
        self._all("reset", [{}] * len(self.workers), 30)

    def received(self) -> int:
        return sum(r["received"] for r in self._all("stats", [{}] * len(self.workers), 30))

    def expect(self, total: int, timeout: float) -> int:
        """Wait until the workers together received ``total`` (each is asked for its share as it
        stands: polled, since the shares are not known up front)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received()
            if got >= total or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def ping(self, timeout: float = 60) -> dict:
        replies = self._all("ping", [{"timeout_ms": int(timeout * 1000)}] * len(self.workers), timeout + 10)
        return {"complete": all(r["complete"] for r in replies), "pongs": sum(r["pongs"] for r in replies)}

    def publish(self, targets: list[dict], app: dict, channels: list[str], rate: float, seconds: float) -> dict:
        return self.publisher.call("publish", seconds + 60, targets=targets, app=app, channels=channels, rate=rate,
                                   duration_ms=int(seconds * 1000), sockets=8, bytes=100)

    def close(self) -> None:
        self._all("close", [{}] * len(self.workers), 60)
        self.count = 0

    def stop(self) -> None:
        for worker in (*self.workers, self.publisher):
            worker.stop()


def _settle(dep: Deployment, quiet: float = 0.08, limit: float = 20) -> None:
    """Wait until every process is idle again (a phase's last work finished)."""
    from . import procstats

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = [procstats.cpu_seconds(procstats.tree(p.proc.pid)) for p in dep.processes]
        time.sleep(0.3)
        after = [procstats.cpu_seconds(procstats.tree(p.proc.pid)) for p in dep.processes]
        if max(y - x for x, y in zip(before, after, strict=True)) / 0.3 < quiet:
            return


def _phase(dep: Deployment, log, name: str, action) -> tuple[dict, object]:
    _settle(dep)
    before = dep.snapshot()
    result = action()
    _settle(dep)
    d = delta(before, dep.snapshot())
    log(f"  {name}: {d['seconds']:.1f} s; process CPU {[round(p['cpu'], 2) for p in d['procs']]} s; "
        f"redis CPU {[round(r['cpu'], 2) for r in d['redis']]} s; commands {[r['commands'] for r in d['redis']]}")
    return d, result


def _machine() -> dict:
    import platform

    return {"cpus": os.cpu_count(), "load": [round(x, 2) for x in os.getloadavg()],
            "cpu_model": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                               if line.startswith("model name")), platform.processor()),
            "python": platform.python_version()}


# ---------------------------------------------------------------------------------------------
# --calibrate: the unit costs, one kind of work at a time
# ---------------------------------------------------------------------------------------------

CAL_SOCKETS = 2000  # on process B, each on one "narrow" channel of its own and one of CAL_WIDE "wide" ones
CAL_WIDE = 100  # so CAL_SOCKETS / CAL_WIDE = 20 subscribers on each wide channel
HTTP_RATES = (50, 300, 1000)  # signed publishes/s answered by process A
LAYER_RATES = (100, 300, 1000, 3000, 6000)  # publishes/s through the channel layer, history on
PLAIN_RATES = (300, 3000)  # the same, history off
EXTRA_RECEIVERS = 8  # raw subscriber connections added to measure Redis's cost per further receiver
CAL_SLOW = 100  # sockets/s of the paced churn phase (connect + 2 subscribes each)


def _seconds(rate: float, publishes: int = 1200) -> float:
    """Long enough for ``publishes`` (CPU counters of the processes tick every 10 ms), 5 s at least."""
    return max(5.0, publishes / rate)


class _Sink:
    """An asyncio protocol that reads a Redis subscriber connection and only counts its bytes."""

    def __init__(self):
        self.bytes = 0
        self.expected = 0  # bytes of the subscribe confirmations to wait for
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.bytes += len(data)

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        pass


def _resp(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class LayerPublisher:
    """Publishes through Tabcast's own cluster channel layer (what a process's broker does for an
    HTTP publish, minus the HTTP) at a steady rate, from an event loop in a thread of this
    process; and raw subscriber connections standing in for further receiving processes."""

    def __init__(self, dep: "Deployment"):
        import asyncio
        import threading

        from service.realtime.cluster_layer import ClusterChannelLayer

        self.dep = dep
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.layer = ClusterChannelLayer(url=dep.topology.url, prefix=dep.prefix)
        self.sinks: list[_Sink] = []

    def _run(self, coro, timeout: float = 300):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def publish(self, channels: list[str], rate: float, seconds: float, history: bool = True) -> int:
        import asyncio

        from service.realtime import protocol
        from service.realtime.channel_names import group_name
        from service.realtime.streams import Stream

        app_id = int(self.dep.app["app_id"])
        groups = {c: group_name(app_id, c) for c in channels}
        frames = {c: protocol.event("bench", c, "x" * 100) for c in channels}

        async def run() -> int:
            loop = asyncio.get_running_loop()
            pending: set = set()
            started, sent = loop.time(), 0
            while (elapsed := loop.time() - started) < seconds:
                for _ in range(int(elapsed * rate) - sent):
                    c = channels[sent % len(channels)]
                    message = {"type": "tc.publish", "app": app_id, "channel": c, "frame": frames[c], "except": None}
                    task = loop.create_task(self.layer.group_send(groups[c], message,
                                                                  Stream(groups[c], 100, 120) if history else None))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    sent += 1
                await asyncio.sleep(0.002)
            await asyncio.gather(*pending)
            return sent

        return self._run(run())

    def add_receivers(self, count: int, channels: list[str]) -> None:
        """``count`` more subscriber connections on every master, each SSUBSCRIBEd to the shard
        channels of ``channels`` that master serves (as a Tabcast process's would be)."""
        import asyncio

        from service.realtime.channel_names import group_name
        from service.realtime.cluster_layer import shard_channel

        app_id = int(self.dep.app["app_id"])
        by_master: dict[int, list[str]] = {}
        for c in channels:
            by_master.setdefault(self.dep.master_of_channel(c), []).append(
                shard_channel(self.dep.prefix, group_name(app_id, c)))

        async def run() -> None:
            loop = asyncio.get_running_loop()
            for _ in range(count):
                for index, names in by_master.items():
                    _, sink = await loop.create_connection(_Sink, "127.0.0.1", self.dep.masters[index].port)
                    sink.transport.write(b"".join(_resp("SSUBSCRIBE", n) for n in names))
                    # Each confirmation: *3 $10 ssubscribe $<len> <name> :<count>
                    sink.expected = sum(len(_resp("ssubscribe", n)) + 4 for n in names)
                    self.sinks.append(sink)
            deadline = loop.time() + 10
            while loop.time() < deadline and any(s.bytes < s.expected for s in self.sinks):
                await asyncio.sleep(0.05)
            if any(s.bytes < s.expected for s in self.sinks):
                raise RuntimeError("the extra receivers' SSUBSCRIBEs were not all confirmed")

        self._run(run())

    def drop_receivers(self) -> None:
        for sink in self.sinks:
            self.loop.call_soon_threadsafe(sink.transport.close)
        self.sinks = []

    def stop(self) -> None:
        self.drop_receivers()
        try:
            self._run(self.layer.flush(), 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


def _idle_rates(dep: Deployment, seconds: float = 4.0) -> dict:
    _settle(dep)
    before = dep.snapshot()
    time.sleep(seconds)
    d = delta(before, dep.snapshot())
    return {"procs": [p["cpu"] / d["seconds"] for p in d["procs"]],
            "redis": [r["cpu"] / d["seconds"] for r in d["redis"]],
            "commands": [r["commands"] / d["seconds"] for r in d["redis"]]}


def _net(d: dict, idle: dict, kind: str):
    """CPU seconds of a phase minus what the same processes (or masters) do idle meanwhile:
    per process for "procs", summed over the masters for "redis"."""
    if kind == "procs":
        return [p["cpu"] - rate * d["seconds"] for p, rate in zip(d["procs"], idle["procs"], strict=True)]
    return sum(r["cpu"] - rate * d["seconds"] for r, rate in zip(d["redis"], idle["redis"], strict=True))


def calibrate(log=print) -> dict:
    """The unit costs, one kind of work at a time: process A answers signed publishes (it has no
    sockets), process B holds CAL_SOCKETS sockets, both on a 3-master cluster; this process
    publishes straight through the channel layer for the rate sweeps."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "service.settings")
    import django

    django.setup()
    measured: dict[str, dict] = {}

    def put(name: str, value: float, phase: str) -> None:
        measured[name] = {"value": round(value, 4), "phase": phase}
        log(f"    {name} = {value:,.4g}  ({phase})")

    def put_points(name: str, points: list[tuple[float, float]], phase: str) -> None:
        points = sorted((round(r, 1), round(x, 4)) for r, x in points)
        measured[name] = {"points": points, "phase": phase}
        log(f"    {name} = " + "; ".join(f"{x:,.4g} at {r:,g}/s" for r, x in points) + f"  ({phase})")

    started = time.time()
    with Deployment(2, measure_cron=True) as dep:
        gen = Generator(2)
        pub = None
        try:
            pub = LayerPublisher(dep)
            a, b = 0, 1
            urls = dep.urls()
            masters = len(dep.masters)
            # Warm-up: lazy imports, the app cache, the node's first flushes.
            gen.connect(urls, [(a, ["warm"]), (b, ["warm"])], concurrency=2)
            gen.publish(dep.targets(), dep.app, ["warm"], 20, 1.0)
            pub.publish(["warm"], 20, 1.0)
            gen.close()
            idle = _idle_rates(dep)
            log(f"  idle: processes {[round(x, 4) for x in idle['procs']]} cores; "
                f"masters {[round(x, 4) for x in idle['redis']]} cores")
            put("proc_idle_cores", sum(idle["procs"]) / 2, "2 idle processes, 4 s")
            put("redis_cron_cores", dep.cron, "3 masters before any process connected, 3 s")
            put("redis_idle_cores", max(sum(idle["redis"]) - masters * dep.cron, 0.0) / 2,
                "3 masters, 2 idle processes (and this one's layer), 4 s, minus the masters' own")
            put("proc_rss_mib", dep.snapshot()["procs"][b]["rss"] / 2**20, "process B after warm-up, no sockets")
            put("calibrate_nodes", 2, "processes A and B hold the app")

            # Connects and subscribes: each kind alone, as fast as 50 in flight allow (the unit
            # costs); then whole socket lifecycles (connect, a new channel, an existing one) paced at
            # CAL_SLOW sockets/s. A process handling fewer events per second pays more per event
            # (each wakes its event loop): ``churn_factor`` is that pace's cost over the fast one's.
            half = CAL_SOCKETS // 2
            narrow = [f"n-{i}" for i in range(CAL_SOCKETS)]
            wide = [f"w-{i}" for i in range(CAL_WIDE)]
            first = range(half)
            d, r = _phase(dep, log, f"connect {half} sockets to B, 50 at once",
                          lambda: gen.connect(urls, [(b, [])] * half))
            assert r["ok"] == half, r
            fast_seconds = r["seconds"]
            connect_py = _net(d, idle, "procs")[b] / half * 1e6
            put("connect_us", connect_py, "connect phase (50 at once), process B")
            put("redis_connect_us", _net(d, idle, "redis") / half * 1e6, "connect phase (50 at once), 3 masters")
            rss_socket, slab = d["procs"][b]["rss"] / half, d["slab_kib"] / (2 * half)
            d, r = _phase(dep, log, "subscribe each to a channel of its own (B joins each), 50 at once",
                          lambda: gen.subscribe([[narrow[i]] for i in first]))
            assert r["subscribed"] == half, r
            fast_seconds += r["seconds"]
            new_py, new_redis = _net(d, idle, "procs")[b] / half * 1e6, _net(d, idle, "redis") / half * 1e6
            new_sub_bytes = sum(x["memory"] for x in d["redis"]) / half
            rss_subs = d["procs"][b]["rss"]
            d, r = _phase(dep, log, f"subscribe each to one of {CAL_WIDE} channels (B has them after the first), "
                          "50 at once", lambda: gen.subscribe([[wide[i % CAL_WIDE]] for i in first]))
            assert r["subscribed"] == half, r
            fast_seconds += r["seconds"]
            sub_py = _net(d, idle, "procs")[b] / half * 1e6
            put("subscribe_us", sub_py, "subscribe-existing phase (50 at once), process B")
            put("redis_subscribe_us", _net(d, idle, "redis") / half * 1e6,
                "subscribe-existing phase (50 at once), 3 masters")
            put("join_us", max(new_py - sub_py, 0.0), "subscribe-new minus subscribe-existing (50 at once), B")
            put("redis_join_us", max(new_redis - measured["redis_subscribe_us"]["value"], 0.0),
                "subscribe-new minus subscribe-existing (50 at once), masters")
            rss_subs += d["procs"][b]["rss"]
            d, r = _phase(dep, log, f"connect {half} more at {CAL_SLOW} sockets/s, each subscribing a channel of "
                          "its own and a wide one",
                          lambda: gen.connect(urls, [(b, [narrow[i], wide[i % CAL_WIDE]])
                                                     for i in range(half, CAL_SOCKETS)], rate=CAL_SLOW))
            assert r["ok"] == half and r["subscribed"] == 2 * half, r
            slow = _net(d, idle, "procs")[b] / half * 1e6
            fast = connect_py + new_py + sub_py
            put_points("churn_factor", [(3 * half / r["seconds"], slow / fast), (3 * half / fast_seconds, 1.0)],
                       f"a socket's connect + 2 subscribes at {CAL_SLOW} sockets/s over the same done kind by kind, "
                       "50 at once; rates: events/s of process B")
            rss_socket += d["procs"][b]["rss"] / half  # (less its 2 subscriptions, below)
            rss_subs_per = (rss_subs / (2 * half))
            put("rss_subscription_kib", rss_subs_per / 1024, "subscribe phases, process B RSS")
            put("rss_socket_kib", (rss_socket - 2 * rss_subs_per) / 2 / 1024, "connect phases, process B RSS")
            put("kernel_socket_kib", (slab + d["slab_kib"] / (2 * half)) / 2,
                "connect phases, /proc/meminfo Slab, per socket (client and server ends)")
            put("calibrate_subscriptions", 2, "every socket on B has 2 subscriptions when closed")

            d, r = _phase(dep, log, "a pusher:ping on every socket", gen.ping)
            assert r["complete"], r
            put("ping_us", _net(d, idle, "procs")[b] / CAL_SOCKETS * 1e6, "ping phase, process B")

            def http(rate: float):
                def run():
                    gen.reset()
                    sent = gen.publish([dep.targets()[a]], dep.app, narrow, rate, _seconds(rate, 600))
                    got = gen.expect(sent["ok"], 30)
                    if sent["errors"] or got < sent["ok"]:
                        raise RuntimeError(f"HTTP publish phase lost work: {sent}, {got} received")
                    return sent["ok"]
                return run

            points = []
            for rate in HTTP_RATES:
                d, q = _phase(dep, log, f"signed publishes at {rate}/s answered by A (1 subscriber, on B)", http(rate))
                points.append((rate, _net(d, idle, "procs")[a] / q * 1e6))
                if rate == 300:
                    put("redis_in_bytes_publish", sum(x["in"] for x in d["redis"]) / q, "HTTP publishes at 300/s")
            put_points("publish_us", points, "signed publishes answered by A, which has no sockets")

            def layer(channels, rate: float, per_message: int, history: bool = True):
                def run():
                    gen.reset()
                    q = pub.publish(channels, rate, _seconds(rate), history)
                    got = gen.expect(q * per_message, 30)
                    if got < q * per_message:
                        raise RuntimeError(f"layer publish phase lost work: {got} of {q * per_message} received")
                    return q
                return run

            per_wide = CAL_SOCKETS // CAL_WIDE
            d, q = _phase(dep, log, f"layer publishes at 300/s to wide channels ({per_wide} sockets each, on B)",
                          layer(wide, 300, per_wide))
            wide_b = _net(d, idle, "procs")[b] / q * 1e6  # msg_us(300) + per_wide x deliver_us
            sweep: dict[tuple, dict] = {}
            for history, rates in ((True, LAYER_RATES), (False, PLAIN_RATES)):
                for rate in rates:
                    for extra in (0, EXTRA_RECEIVERS):
                        if extra:
                            pub.add_receivers(extra, narrow)
                        label = f"layer publishes at {rate}/s, history {'on' if history else 'off'}, " \
                                f"{1 + extra} receiving connections per publish"
                        d, q = _phase(dep, log, label, layer(narrow, rate, 1, history))
                        pub.drop_receivers()
                        sweep[history, rate, extra] = {"b": _net(d, idle, "procs")[b] / q * 1e6,
                                                       "redis": _net(d, idle, "redis") / q * 1e6,
                                                       "out": sum(x["out"] for x in d["redis"]) / q}
            narrow_300 = (sweep[True, 300, 0]["b"] + sweep[True, 300, EXTRA_RECEIVERS]["b"]) / 2
            deliver = (wide_b - narrow_300) / (per_wide - 1)
            put("deliver_us", deliver, f"B per message, wide ({per_wide} writes) minus narrow (1 write) at 300/s")
            put_points("msg_us", [(rate, (sweep[True, rate, 0]["b"] + sweep[True, rate, EXTRA_RECEIVERS]["b"]) / 2
                                   - deliver) for rate in LAYER_RATES],
                       "B per message received at that rate (narrow channels), minus one deliver_us")
            for history, rates, suffix in ((True, LAYER_RATES, ""), (False, PLAIN_RATES, "_plain")):
                put_points(f"redis_publish{suffix}_us", [(rate / masters, sweep[history, rate, 0]["redis"])
                                                         for rate in rates],
                           f"masters per publish, 1 receiving process; rates per master (history "
                           f"{'on' if history else 'off'})")
                put_points(f"redis_out{suffix}_us",
                           [(rate / masters, max((sweep[history, rate, EXTRA_RECEIVERS]["redis"]
                                                  - sweep[history, rate, 0]["redis"]) / EXTRA_RECEIVERS, 0.0))
                            for rate in rates],
                           f"masters per publish, ({1 + EXTRA_RECEIVERS} minus 1 receiving connections) / "
                           f"{EXTRA_RECEIVERS}; rates per master")
            put("redis_out_bytes_receiver", (sweep[True, 300, EXTRA_RECEIVERS]["out"] - sweep[True, 300, 0]["out"])
                / EXTRA_RECEIVERS, "bytes out per further receiving connection, layer publishes at 300/s")
            put("redis_clients_per_process", sum(x["connected_clients"] for x in dep.snapshot()["redis"]) / masters / 3,
                "connected_clients per master / 3 (A, B and this process's layer), after the rate sweeps")

            update = dep.processes[0].update_app(dep.app["app_id"], history_size=0)
            assert update["history_size"] == 0, update
            time.sleep(2.5)  # TABCAST_APP_CACHE_SECONDS=1 here
            d, q = _phase(dep, log, "signed publishes at 300/s answered by A, history off", http(300))
            put_points("publish_plain_us", [(300, _net(d, idle, "procs")[a] / q * 1e6)],
                       "signed publishes at 300/s answered by A, history off")

            d, r = _phase(dep, log, f"connect {CAL_SOCKETS} sockets to A, one on each narrow channel",
                          lambda: gen.connect(urls, [(a, [c]) for c in narrow]))
            assert r["subscribed"] == CAL_SOCKETS, r
            pair = sum(x["memory"] for x in d["redis"]) / CAL_SOCKETS
            put("redis_subscription_bytes", pair, "A joining 2,000 channels B has: used_memory per (process, channel)")
            put("redis_channel_bytes", max(new_sub_bytes - pair, 0.0),
                "B joining 2,000 new channels, minus the per (process, channel) bytes")

            d, _ = _phase(dep, log, f"close every socket: B's {CAL_SOCKETS} (2 subscriptions each), A's (1 each)",
                          gen.close)
            put("close_us", _net(d, idle, "procs")[b] / CAL_SOCKETS * 1e6, "close phase, process B")
            # A socket of B's makes 3 state writes as it goes (its count, 2 subscriptions), one of A's 2.
            put("redis_close_us", _net(d, idle, "redis") / CAL_SOCKETS * 3 / 5 * 1e6,
                "close phase, 3 masters, B's share (3 of every 5 state writes)")
        finally:
            if pub is not None:
                pub.stop()
            gen.stop()
    measured.update(single_redis_units(log))
    return {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "seconds": round(time.time() - started), "machine": _machine(),
            "command": "python -m bench.capacity --calibrate", "units": measured}


def single_redis_units(log) -> dict:
    """On a redis-server of its own: the CPU of one state script (SET_AND_SUM, a subscribe's count
    write) as the processes holding the app grow (it reads one key per process:
    state/redis_scripts.py), and the memory a channel's history takes."""
    import asyncio

    import msgpack

    from service.realtime import streams
    from service.realtime.state.redis import RedisState
    from tests.support.processes import RedisProcess
    from tests.support.redis_topologies import redis_command

    out: dict = {}

    def put(name, value, phase):
        out[name] = {"value": round(value, 4), "phase": phase}
        log(f"    {name} = {value:,.4g}  ({phase})")

    server = RedisProcess().start()
    try:
        def cpu() -> float:
            return _redis_info(server.port)["cpu"]

        async def script_us(nodes: int, calls: int = 3000) -> float:
            states = [RedisState(url=server.url, prefix=f"cap{nodes}", node_ttl=30) for _ in range(nodes)]
            for s in states:
                await s.start()
                await s.add_subscription(1, "ch", f"{s.node_id}.1")  # each holds an entry of app 1
            me = states[0]
            await me.add_subscription(1, "ch", "x.2")  # learns the others (one TCNODES retry)
            before = cpu()
            for i in range(calls):
                await me.add_subscription(1, "ch", f"y.{i}")
            used = cpu() - before
            for s in states:
                await s.stop()
            return used / calls * 1e6

        points = []
        for nodes in (1, 8, 32, 64):
            points.append((nodes, asyncio.run(script_us(nodes))))
            log(f"  state script, {nodes} processes holding the app: {points[-1][1]:.1f} µs redis-server CPU")
        xs, ys = [n - 1 for n, _ in points], [y for _, y in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
        put("state_script_us", my - slope * mx, "SET_AND_SUM one at a time, least squares over 1-64 processes")
        put("state_script_node_us", slope, "SET_AND_SUM, slope per further process holding the app")

        # History: the real script, a 150-byte frame, the default size (100).
        sha = redis_command(server.port, "SCRIPT", "LOAD", streams.APPEND_AND_PUBLISH).strip()
        frame = '{"event":"bench","channel":"c","data":"' + "x" * 100
        message = streams.script_message(msgpack.packb({"type": "tc.publish", "app": 1, "channel": "c", "except": None}))
        fixed = streams.fixed_args("cap", "tc.1.history", streams.Stream("tc.1.history", 100, 120), "PUBLISH", "c")

        def append(times: int) -> None:
            import redis

            client = redis.Redis(port=server.port)
            for _ in range(times):
                client.evalsha(sha, 2, *fixed, frame, message)
            client.close()

        def usage() -> int:
            return sum(int(redis_command(server.port, "MEMORY", "USAGE", k, "SAMPLES", "0").strip() or 0) for k in keys)

        append(1)
        one = usage()
        append(99)
        full = usage()
        per_message = (full - one) / 99
        put("history_message_bytes", per_message, "MEMORY USAGE of a channel's history, 1 vs 100 frames of ~150 B")
        put("history_channel_bytes", one - per_message,
            "MEMORY USAGE of a channel's stream keys with 1 frame, minus it")
    finally:
        server.stop()
    return out


# ---------------------------------------------------------------------------------------------
# --check: a mixed load on 4 processes and 3 shards, measured against the model's prediction
# ---------------------------------------------------------------------------------------------


@dataclass
class CheckLoad:
    """The stated load of the check (the defaults are docs/capacity.md's)."""

    processes: int = 4
    shards: int = 3
    connections: int = 4000  # spread evenly: socket i on process i % processes
    subscriptions: int = 2  # channels per socket, drawn at random (seeded) from `channels`
    channels: int = 100  # so 80 subscribers per channel on average
    publishes_per_s: float = 250.0  # signed HTTP, channel i % channels through process i % processes
    connect_concurrency: int = 100  # sockets connecting (and subscribing) at once
    seconds: float = 15.0
    seed: int = 11
    history: bool = True


def place(load: CheckLoad) -> list[tuple[int, list[str]]]:
    rng = random.Random(load.seed)
    names = [f"c-{k}" for k in range(load.channels)]
    return [(i % load.processes, rng.sample(names, load.subscriptions)) for i in range(load.connections)]


def predict_run(load: CheckLoad, sockets: list[tuple[int, list[str]]], publishes: dict[str, int],
                http: list[int], shard_of: dict[str, int], u: dict[str, Unit], seconds: dict[str, float]) -> dict:
    """What the model says the check's phases cost, from the exact placement of its sockets and
    the publishes that were answered 200 (per channel, per answering process)."""
    v = {k: x.value for k, x in u.items()}
    n, m = load.processes, load.shards
    local: list[dict[str, int]] = [dict() for _ in range(n)]
    for p, chans in sockets:
        for c in chans:
            local[p][c] = local[p].get(c, 0) + 1
    extra = state_script_us(u, n) - state_script_us(u, v["calibrate_nodes"])
    pred: dict = {"connect": {}, "publish": {}, "close": {}}
    # Connect + subscribe phase: per process its sockets, subscribes and joins (channels new to it).
    for p in range(n):
        socks = sum(1 for q, _ in sockets if q == p)
        subs = sum(local[p].values())
        joins = len(local[p])
        rate = (socks + subs) / seconds["connecting"]  # events/s while the generator connected
        pred["connect"][f"process {p}"] = (v["proc_idle_cores"] * seconds["connect"] + (
            (socks * v["connect_us"] + subs * v["subscribe_us"]) * u["churn_factor"].at(rate)
            + joins * v["join_us"]) / 1e6)
    socks, subs = len(sockets), sum(len(c) for _, c in sockets)
    joins = sum(len(x) for x in local)
    background = v["redis_idle_cores"] * n + v["redis_cron_cores"] * m  # cores, all masters
    pred["connect"]["Redis, 3 masters"] = (background * seconds["connect"] + (
        socks * v["redis_connect_us"] + subs * v["redis_subscribe_us"] + joins * v["redis_join_us"]
        + (socks + subs) * extra) / 1e6)
    # Publish phase: each cost at the rate it ran at (per process, per master).
    pub_unit = u["publish_us" if load.history else "publish_plain_us"]
    hist = "" if load.history else "_plain"
    shard_pubs = [0] * m
    for c, q in publishes.items():
        shard_pubs[shard_of[c]] += q
    shard_cpu = [(v["redis_cron_cores"] + v["redis_idle_cores"] * n / m) * seconds["publish"]] * m
    deliveries = 0
    for p in range(n):
        recv = sum(q for c, q in publishes.items() if local[p].get(c))
        writes = sum(q * local[p].get(c, 0) for c, q in publishes.items())
        deliveries += writes
        rate = (http[p] + recv) / load.seconds  # events/s: publishes answered + messages received
        pred["publish"][f"process {p}"] = (v["proc_idle_cores"] * seconds["publish"] + (
            http[p] * pub_unit.at(rate) + recv * u["msg_us"].at(rate) + writes * v["deliver_us"]) / 1e6)
    for c, q in publishes.items():
        r = sum(1 for p in range(n) if local[p].get(c))
        s = shard_of[c]
        rate = shard_pubs[s] / load.seconds
        shard_cpu[s] += q * (u[f"redis_publish{hist}_us"].at(rate) + (r - 1) * u[f"redis_out{hist}_us"].at(rate)) / 1e6
    for s in range(m):
        pred["publish"][f"Redis master {s}"] = shard_cpu[s]
    pred["spublish"] = shard_pubs  # one SPUBLISH per publish, on the channel's master
    pred["commands"] = sum(publishes.values()) * v[
        "redis_commands_publish_history" if load.history else "redis_commands_publish_plain"]
    pred["deliveries"] = deliveries
    # Close phase.
    close_scale = lambda s: (1 + s) / (1 + v["calibrate_subscriptions"])  # noqa: E731
    for p in range(n):
        socks_p = sum(1 for q, _ in sockets if q == p)
        pred["close"][f"process {p}"] = (v["proc_idle_cores"] * seconds["close"]
                                         + socks_p * v["close_us"] * close_scale(load.subscriptions) / 1e6)
    pred["close"]["Redis, 3 masters"] = (background * seconds["close"] + socks * (
        v["redis_close_us"] * close_scale(load.subscriptions) + (1 + load.subscriptions) * extra) / 1e6)
    # Memory after connecting.
    pred["rss"] = [(v["rss_socket_kib"] * sum(1 for q, _ in sockets if q == p)
                    + v["rss_subscription_kib"] * sum(local[p].values())) * 1024 for p in range(n)]
    return pred


def check(load: CheckLoad, u: dict[str, Unit], log=print) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "service.settings")
    import django

    django.setup()
    from . import procstats

    sockets = place(load)
    started = time.time()
    rows = []
    with Deployment(load.processes, load.shards) as dep:
        gen = Generator(2)
        gen_cpu: dict[str, float] = {}
        meter = procstats.CpuMeter(gen.pids)

        def metered(name, action):
            """``action``, with the generator's CPU (cores) over it kept in gen_cpu[name]."""
            def run():
                meter.start(time.monotonic())
                result = action()
                gen_cpu[name] = meter.stop(time.monotonic())
                return result
            return run

        try:
            urls = dep.urls()
            channels = [f"c-{k}" for k in range(load.channels)]
            shard_of = {c: dep.master_of_channel(c) for c in channels}
            if not load.history:
                dep.processes[0].update_app(dep.app["app_id"], history_size=0)
                time.sleep(2.5)  # TABCAST_APP_CACHE_SECONDS=1
            # Warm-up on every process.
            gen.connect(urls, [(p, ["warm"]) for p in range(load.processes)], concurrency=4)
            gen.publish(dep.targets(), dep.app, ["warm"], 20, 1.0)
            gen.close()
            rss0 = [p["rss"] for p in dep.snapshot()["procs"]]
            d_conn, r = _phase(dep, log, f"connect {load.connections} sockets, {load.subscriptions} channels each",
                               metered("connect", lambda: gen.connect(urls, sockets,
                                                                      concurrency=load.connect_concurrency)))
            if r["ok"] != load.connections or r["subscribed"] != load.connections * load.subscriptions:
                raise RuntimeError(f"connect phase incomplete: {r}")
            rss1 = [p["rss"] for p in dep.snapshot()["procs"]]

            def run():
                gen.reset()
                return gen.publish(dep.targets(), dep.app, channels, load.publishes_per_s, load.seconds)

            d_pub, sent = _phase(dep, log, f"publish {load.publishes_per_s:.0f}/s for {load.seconds:.0f} s",
                                 metered("publish", run))
            received = gen.received()
            per_channel = dict(zip(channels, sent["per_channel"], strict=True))
            d_close, _ = _phase(dep, log, "close every socket", metered("close", gen.close))
            secs = {"connect": d_conn["seconds"], "connecting": r["seconds"], "publish": d_pub["seconds"],
                    "close": d_close["seconds"]}
            pred = predict_run(load, sockets, per_channel, sent["per_target"], shard_of, u, secs)
        finally:
            gen.stop()

    def row(phase, what, measured, predicted, unit="CPU s"):
        rows.append({"phase": phase, "what": what, "measured": measured, "predicted": predicted, "unit": unit,
                     "ratio": measured / predicted if predicted else float("nan")})

    for p in range(load.processes):
        row("connect + subscribe", f"process {p}", d_conn["procs"][p]["cpu"], pred["connect"][f"process {p}"])
    row("connect + subscribe", "all processes", _sum(d_conn, "procs", "cpu"),
        sum(v for k, v in pred["connect"].items() if k.startswith("process")))
    row("connect + subscribe", "Redis, 3 masters", _sum(d_conn, "redis", "cpu"), pred["connect"]["Redis, 3 masters"])
    for p in range(load.processes):
        row("publish", f"process {p}", d_pub["procs"][p]["cpu"], pred["publish"][f"process {p}"])
    row("publish", "all processes", _sum(d_pub, "procs", "cpu"),
        sum(v for k, v in pred["publish"].items() if k.startswith("process")))
    for s in range(load.shards):
        row("publish", f"Redis master {s}", d_pub["redis"][s]["cpu"], pred["publish"][f"Redis master {s}"])
    row("publish", "Redis, 3 masters", _sum(d_pub, "redis", "cpu"),
        sum(v for k, v in pred["publish"].items() if k.startswith("Redis")))
    for s in range(load.shards):
        row("publish", f"Redis master {s}: SPUBLISH", d_pub["redis"][s]["calls"].get("spublish", 0),
            pred["spublish"][s], "commands")
    row("publish", "Redis, all commands", sum(r["commands"] for r in d_pub["redis"]), pred["commands"], "commands")
    row("publish", "deliveries", received, pred["deliveries"], "messages")
    for p in range(load.processes):
        row("close", f"process {p}", d_close["procs"][p]["cpu"], pred["close"][f"process {p}"])
    row("close", "Redis, 3 masters", _sum(d_close, "redis", "cpu"), pred["close"]["Redis, 3 masters"])
    for p in range(load.processes):
        row("memory", f"process {p} RSS growth", (rss1[p] - rss0[p]) / 2**20, pred["rss"][p] / 2**20, "MiB")
    return {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)), "machine": _machine(),
            "load": asdict(load),
            "published": {k: v for k, v in sent.items() if k != "per_channel"}, "received": received, "rows": rows,
            "generator_cpu": gen_cpu, "server_cpu": {k: _sum(d, "procs", "cpu") / d["seconds"] for k, d in (
                ("connect", d_conn), ("publish", d_pub), ("close", d_close))},
            "generator_note": "the Node generator and 3 redis-servers share the machine's cores with the 4 processes"}


def check_table(result: dict) -> str:
    lines = ["| phase | what | measured | predicted | measured / predicted |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        fmt = (lambda x: f"{x:,.0f}") if r["unit"] in ("commands", "messages") else (lambda x: f"{x:.3f}")
        unit = "" if r["unit"] == "CPU s" else f" {r['unit']}"
        ok = "" if 0.75 <= r["ratio"] <= 1.25 else " ⚠"
        lines.append(f"| {r['phase']} | {r['what']} | {fmt(r['measured'])}{unit} | {fmt(r['predicted'])}{unit} "
                     f"| {r['ratio']:.2f}{ok} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibrate", action="store_true",
                        help="measure the unit costs, write them to --units (with --check: then check against them)")
    parser.add_argument("--check", action="store_true", help="run the check: 4 processes, 3 shards, stated load")
    parser.add_argument("--units", type=Path, default=UNITS_FILE, help="the calibrated units (JSON)")
    parser.add_argument("--json", type=Path, help="--check: also write the full result here")
    parser.add_argument("--publishes", type=float, default=CheckLoad.publishes_per_s, help="--check: publishes/s")
    parser.add_argument("--seconds", type=float, default=CheckLoad.seconds, help="--check: publish phase length")
    parser.add_argument("--no-history", action="store_true", help="--check: the app keeps no history")
    parser.add_argument("--connect-concurrency", type=int, default=CheckLoad.connect_concurrency,
                        help="--check: sockets connecting at once")
    args = parser.parse_args(argv)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.calibrate:
        result = calibrate(log)
        args.units.write_text(json.dumps(result, indent=1) + "\n")
        log(f"wrote {args.units}")
        if not args.check:
            return 0
    u = units(args.units)
    if args.check:
        load = CheckLoad(publishes_per_s=args.publishes, seconds=args.seconds, history=not args.no_history,
                         connect_concurrency=args.connect_concurrency)
        result = check(load, u, log)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"Check, {result['measured']}, `python -m bench.capacity --check`; machine: {result['machine']}")
        print(f"load: {result['load']}\n")
        print(check_table(result))
        return 0
    print("## Unit costs\n")
    print(units_table(u))
    print("\n## Headline: base workload\n")
    print(headline_table(u))
    print("\n## Where the cores go\n")
    print(cpu_breakdown_table(u))
    print("\n## Shapes, 1,000,000 connections\n")
    print(shapes_table(u))
    print("\n## One app's state scripts\n")
    print(one_app_limit(u))
    return 0


if __name__ == "__main__":
    sys.exit(main())
