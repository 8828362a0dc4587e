"""The results as a Markdown table (each value also as a ratio to baseline (a)) plus the machine."""

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import version

from tests.support.clients import JS_DIR, node_binary

from . import recovery, redis_cost

BASELINE = "raw websockets (a)"

# (key, label, format, target): targets are ratios to (a) unless they say otherwise.
ROWS = [
    ("fanout_{small}", "fan-out, {small:,} subscribers (deliveries/s)", "{:,.0f}", "≥ 0.8x (a), ≥ 20x (b)"),
    ("fanout_{big}", "fan-out, {big:,} subscribers (deliveries/s)", "{:,.0f}", "≥ 0.8x (a), ≥ 20x (b)"),
    ("latency_p50", "latency p50 at ½ max, {big:,} subs (ms)", "{:.1f}", ""),
    ("latency_p99", "latency p99 at ½ max, {big:,} subs (ms)", "{:.1f}", "≤ 25 ms"),
    ("latency_max", "latency max at ½ max, {big:,} subs (ms)", "{:.1f}", ""),
    ("neighbour_p99_idle", "neighbour p99, idle server: 10 subs at 50/s (ms)", "{:.1f}", ""),
    ("neighbour_p99", "neighbour p99 beside {big:,} subs at ½ max (ms)", "{:.1f}", "≤ 15 ms, ≤ 3x idle"),
    ("neighbour_a_throughput", "big tenant flat out beside the neighbour (x alone)", "{:.2f}", "≥ 0.9"),
    ("connect", "connect rate, burst of {burst:,} (connects/s)", "{:,.0f}", "≥ 0.6x (a)"),
    ("rss", "RSS per idle connection, {big:,} conns (KiB)", "{:.1f}", "≤ 16 KB"),
    ("publish", "signed HTTP publishes/s, 1 process", "{:,.0f}", "≥ 3,000/s"),
]


def _cell(measurement, baseline, fmt: str) -> str:
    if measurement is None:
        return "—"
    text = fmt.format(measurement.value)
    if baseline is not None and baseline.value:
        text += f" ({measurement.value / baseline.value:.2f}x)"
    if "incomplete" in measurement.detail:
        text += " ⚠"
    return text


def results_table(results: dict, profile) -> str:
    sizes = {"small": min(profile.fanout_subscribers), "big": profile.idle_connections, "burst": profile.burst}
    servers = results["servers"]
    labels = list(servers)
    baseline = servers.get(BASELINE, {})
    lines = ["| metric | " + " | ".join(labels) + " | target |", "|---" * (len(labels) + 2) + "|"]
    for key, label, fmt, goal in ROWS:
        key = key.format(**sizes)
        if not any(key in measured for measured in servers.values()):
            continue
        cells = [_cell(servers[name].get(key), baseline.get(key) if name != BASELINE else None, fmt)
                 for name in labels]
        lines.append(f"| {label.format(**sizes)} | " + " | ".join(cells) + f" | {goal} |")
    return "\n".join(lines)


def cpu_table(results: dict, profile) -> str:
    """Where the cores went: server and generator CPU (share of one core) during the runs."""
    big = profile.idle_connections
    lines = ["| server | fan-out {0:,}: server CPU / generator CPU | connect burst: server / generator |".format(big),
             "|---|---|---|"]
    for name, measured in results["servers"].items():
        cells = []
        for key in (f"fanout_{big}", "connect"):
            d = measured[key].detail if key in measured else {}
            cells.append(f"{d['server_cpu']:.0%} / {d['generator_cpu']:.0%}" if d else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


COST_ROWS = [  # (measurement key, detail key, label)
    ("fanout_{small}", "server_us_per_delivery", "per delivery, fan-out {small:,}"),
    ("fanout_{big}", "server_us_per_delivery", "per delivery, fan-out {big:,}"),
    ("connect", "server_us_per_connect", "per connect (burst of {burst:,})"),
    ("publish", "server_us_per_publish", "per signed HTTP publish"),
]


def cost_table(results: dict, profile) -> str:
    """Server CPU µs per operation (ratio to (a); lower is better): steadier than rates on a busy machine."""
    sizes = {"small": min(profile.fanout_subscribers), "big": profile.idle_connections, "burst": profile.burst}
    servers = results["servers"]
    labels = list(servers)
    lines = ["| server CPU (µs) | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for key, field, label in COST_ROWS:
        key = key.format(**sizes)
        cells = []
        for name in labels:
            measured = servers[name].get(key)
            if measured is None or field not in measured.detail:
                cells.append("—")
                continue
            cell = f"{measured.detail[field]:,.1f}"
            baseline = servers.get(BASELINE, {}).get(key)
            if name != BASELINE and baseline is not None and baseline.detail.get(field):
                cell += f" ({measured.detail[field] / baseline.detail[field]:.2f}x)"
            cells.append(cell)
        lines.append(f"| {label.format(**sizes)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_table(results: dict, profile) -> str:
    """Measured throughput of 1 and 2 processes, plus what the server CPU per operation projects.

    Both processes and the generator share the machine's cores here, so the measured fan-out
    ratio is capped by the CPU the processes get (the generator needs about as much CPU per
    delivery as the server). Signed publishes cost the generator less, but on 2 cores the
    generator and Redis still take a third of a core from the two processes. The projection
    assumes a core per server process: two processes then do 2 x (µs per operation with one) /
    (µs with two) times what one does, i.e. it charges the Redis hop and per-process overhead.
    """
    scaling = results.get("scaling")
    if not scaling:
        return "Not measured in this run (`--only` without `scale`)."
    return "\n\n".join([
        _scaling_block(f"fan-out {profile.idle_connections:,} subscribers", "deliveries/s", "delivery",
                       scaling["scale_1p"], scaling["scale_2p"], "server_us_per_delivery"),
        _scaling_block("signed HTTP publishes", "publishes/s", "publish",
                       scaling["scale_publish_1p"], scaling["scale_publish_2p"], "server_us_per_publish"),
    ])


def _scaling_block(what: str, rate: str, operation: str, one, two, cost: str) -> str:
    us_one, us_two = one.detail[cost], two.detail[cost]

    def row(label: str, measured, ratio: str = "") -> str:
        d = measured.detail
        return (f"| {label} | {measured.value:,.0f}{ratio} | {d['server_cpu']:.0%} | {d['generator_cpu']:.0%} "
                f"| {d[cost]:.1f} µs |")

    return "\n".join([
        f"| Tabcast uvicorn + Redis, {what} | {rate} | server CPU | generator CPU | server CPU per {operation} |",
        "|---|---|---|---|---|",
        row("1 process", one),
        row("2 processes (`serve --workers 2`)", two, f" ({two.value / one.value:.2f}x)"),
        f"| 2 processes, projected with a core each (2 x {us_one:.1f} / {us_two:.1f}) | | | | "
        f"**{2 * us_one / us_two:.2f}x** |",
    ])


def floor_text(results: dict) -> str:
    floor = results.get("floor")
    if not floor:
        return ""
    return (f"Floor for the latency rows (`floor.py`, same run, same cores): a bare `send()` loop needs "
            f"{floor['wall_ms']:.1f} ms ({floor['cpu_ms']:.1f} ms CPU, {floor['us_per_send']:.1f} µs per send) to "
            f"write one 130-byte message to {floor['count']:,} loopback sockets, so in one process the last 1% "
            f"of those subscribers cannot get a message sooner than ~{0.99 * floor['wall_ms']:.0f} ms after it "
            "was published, whatever the server.")


def _cpu_model() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def machine(results: dict) -> str:
    node = subprocess.run([node_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    ws = __import__("json").loads((JS_DIR / "node_modules" / "ws" / "package.json").read_text())["version"]
    server_cpus, generator_cpus = results["pinning"]
    pinning = (f"server on CPU {sorted(server_cpus)}, load generator on CPU {sorted(generator_cpus)} (taskset-style "
               "affinity)" if server_cpus else "none (server and generator share all cores)")
    packages = ", ".join(f"{name} {version(name)}" for name in
                         ("Django", "channels", "channels_redis", "uvicorn", "daphne", "websockets", "uvloop"))
    return "\n".join([
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, run took {results['seconds']:.0f} s",
        f"- machine: {os.cpu_count()} CPUs, {_cpu_model()}, {platform.system()} {platform.release()}",
        f"- load average before / after: {' '.join(f'{x:.2f}' for x in results['load_before'])} / "
        f"{' '.join(f'{x:.2f}' for x in results['load_after'])} (the machine is shared: numbers are noisy)",
        f"- Python {sys.version.split()[0]}; {packages}; Node {node}, ws {ws}",
        f"- pinning: {pinning}",
        "- scaling rows run on all cores: two server processes need both (shared with the generator and Redis)",
    ])


def render(results: dict, profile) -> str:
    servers = [results_table(results, profile), *filter(None, [floor_text(results)]),
               "CPU during the runs (100% = one core):", cpu_table(results, profile),
               "Server CPU per operation, ratio to (a) (lower is better; steadier than rates when the machine is busy):",
               cost_table(results, profile)] if results["servers"] else []
    return "\n\n".join([
        f"### Results ({profile.name} profile)", machine(results), *servers,
        "Scaling (2 processes vs 1, Redis):", scaling_table(results, profile),
        *(["Recovery: channel history off (a) vs on, resume, memory per stored message (`recovery.py`):",
           recovery.table(results["recovery"])] if results.get("recovery") else []),
        *(["Redis work per operation and channel-layer fan-out, one Redis vs a Redis Cluster (`redis_cost.py`):",
           redis_cost.table(results["redis_cost"])] if results.get("redis_cost") else []),
    ]) + "\n"
