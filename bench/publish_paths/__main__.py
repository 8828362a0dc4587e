"""Run the three publish paths and print server CPU per signed publish (see __init__)."""

import subprocess
import sys
import urllib.request

from tests.support.processes import ROOT, TabcastProcess, wait_until

from .. import procstats
from ..loadgen import Publisher
from ..servers import TABCAST_BENCH_ENV

VARIANTS = {  # label: (settings module, fast publish on)
    "Tabcast, publish endpoints on the event loop (default)": ("service.settings", "1"),
    "Tabcast, same endpoints through Django + DRF": ("service.settings", "0"),
    "do-nothing Django view, same handler and middleware": ("bench.publish_paths.trivial", "0"),
}


def measure(settings_module: str, fast_publish: str, seconds: float = 3) -> tuple[float, float]:
    """(publishes/s, server CPU µs per publish) with 8 publishes in flight."""
    tabcast = TabcastProcess(extra_env=TABCAST_BENCH_ENV)
    tabcast.migrate()
    app = tabcast.create_app("bench")
    env = {**tabcast.env, "DJANGO_SETTINGS_MODULE": settings_module, "TABCAST_FAST_PUBLISH": fast_publish,
           "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "bench.publish_paths.serve", str(tabcast.port)],
                              cwd=ROOT, env=env)
    publisher = Publisher()
    try:
        wait_until(lambda: _healthy(tabcast.http), 120, what="the server")
        target = {"mode": "http", "host": "127.0.0.1", "port": tabcast.port, "app": app, "channel": "bench"}
        publisher.publish(target, 300, concurrency=8)  # warm-up
        before = procstats.cpu_seconds([server.pid])
        sent = publisher.publish(target, 10**7, concurrency=8, duration=seconds)
        used = procstats.cpu_seconds([server.pid]) - before
        if sent["errors"]:
            raise RuntimeError(f"{sent['errors']} publishes failed")
        return sent["ok"] / ((sent["t_end"] - sent["t_first"]) / 1000), used / sent["ok"] * 1e6
    finally:
        publisher.stop()
        server.terminate()
        server.wait(10)


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def main() -> None:
    print("| publish path | publishes/s | server CPU per publish |\n|---|---|---|")
    for label, (settings_module, fast_publish) in VARIANTS.items():
        rate, cpu = measure(settings_module, fast_publish)
        print(f"| {label} | {rate:,.0f} | {cpu:,.0f} µs |", flush=True)


if __name__ == "__main__":
    main()
