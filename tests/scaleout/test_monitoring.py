"""docker/prometheus and docker/grafana: the config, the alerts and the dashboard an operator runs.

promtool (Debian's `prometheus` package; bin/test installs it) checks the config and the rules
and runs the alerts' unit tests; each alert's tests are shown to be able to fail (an alert that
always fires, or never does, fails them). Every metric the alerts and the dashboard query must be
served by a real server's /metrics (and be documented in docs/metrics.md), so a renamed metric
can't leave a silent alert or an empty panel behind.
"""

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import python_backend
from tests.support.processes import ROOT, TabcastProcess

PROMETHEUS = ROOT / "docker" / "prometheus"
GRAFANA = ROOT / "docker" / "grafana"
METRIC = re.compile(r"\b(tabcast_[a-z0-9_]+)\b")
SUFFIXES = ("_bucket", "_sum", "_count", "_created")


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed: bin/test installs Debian's prometheus package")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def dashboard() -> dict:
    return json.loads((GRAFANA / "tabcast.json").read_text())


def panels(board: dict) -> list[dict]:
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", ()))  # a collapsed row keeps its panels inside
    return found


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in panels(dashboard()) for target in panel.get("targets", ())]


def metric_names(expr: str) -> set[str]:
    names = set()
    for name in METRIC.findall(expr):
        for suffix in SUFFIXES:
            if name.endswith(suffix) and not name.endswith("_total" + suffix):
                name = name.removesuffix(suffix)
                break
        names.add(name)
    return names


# --- promtool ---


def test_promtool_accepts_the_config_and_the_rules(tmp_path):
    checked = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # A full check too (rule files, the token file): in a copy whose token file exists here.
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert "credentials_file: /run/secrets/tabcast_metrics_token" in config
    (tmp_path / "token").write_text("secret-token")
    (tmp_path / "prometheus.yml").write_text(config.replace("/run/secrets/tabcast_metrics_token",
                                                            str(tmp_path / "token")))
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout + checked.stderr
    rules = promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in rules.stdout


def test_the_alerts_the_issue_asks_for_exist():
    exprs = {name: rule["expr"] for name, rule in alerts().items()}
    wanted = {
        "event-loop lag": "tabcast_event_loop_lag_seconds_bucket",
        "5xx rate": 'status=~"5.."',
        "503 rate": 'status="503"',
        "slow-reader closes": "tabcast_slow_reader_closes_total",
        "Redis down": "tabcast_redis_up",
        "Redis errors": "tabcast_redis_errors_total",
        "connection quota near the plan limit": "tabcast_connection_quota_usage_ratio_max",
        "webhook failures": 'tabcast_webhooks_total{outcome="error"}',
    }
    for what, needle in wanted.items():
        assert any(needle in expr for expr in exprs.values()), f"no alert on {what} ({needle})"
    for name, rule in alerts().items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_every_alert_has_unit_tests_for_firing_and_not_firing():
    cases: dict[str, list[list]] = {}
    for test in yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]:
        for case in test.get("alert_rule_test", ()):
            cases.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    for name in alerts():
        assert any(expected for expected in cases.get(name, ())), f"{name}: no test where it fires"
        assert any(not expected for expected in cases.get(name, ())), f"{name}: no test where it stays quiet"
    run = promtool("test", "rules", "alerts_test.yml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


@pytest.mark.parametrize("mutation", ["always", "never"])
def test_each_alerts_tests_catch_an_alert_that_always_or_never_fires(tmp_path, mutation):
    """The tests are not vacuous: replacing any one alert's expression by one that always fires
    (for every instance of its tests) or never fires makes `promtool test rules` fail."""
    source = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path / "alerts_test.yml")
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(source, sort_keys=False))
    unchanged = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr  # only the mutation makes them fail
    survivors = []
    for name in alerts():
        mutated = json.loads(json.dumps(source))
        for group in mutated["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == name:
                    # "always": every series any test feeds in fires (with its labels); "never": nothing does.
                    rule["expr"] = ('count by (instance, job) ({__name__=~"tabcast_.+|up"})' if mutation == "always"
                                    else "vector(1) == 0")
        (tmp_path / "alerts.yml").write_text(yaml.safe_dump(mutated, sort_keys=False))
        if promtool("test", "rules", "alerts_test.yml", cwd=tmp_path).returncode == 0:
            survivors.append(name)
    assert not survivors, f"the tests still pass when these alerts {mutation} fire: {survivors}"


# --- Grafana ---


def test_the_dashboard_is_provisioned_and_every_panel_queries_valid_promql(tmp_path):
    board = dashboard()
    assert board["uid"] and board["title"]
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    queries = []
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], f"{panel['title']} queries nothing"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid
            queries.append(target["expr"].replace("$instance", ".*"))
    titles = " ".join(panel["title"].lower() for panel in panels(board))
    for wanted in ("sockets", "publishes", "deliveries", "latency", "event-loop lag", "5xx", "429", "503",
                   "slow-reader", "redis errors", "webhooks", "top apps"):
        assert wanted in titles, f"no panel about {wanted}"
    # promtool parses PromQL: every query as a recording rule.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(queries)]}]}
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(tmp_path / "dashboard_rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_runs_prometheus_and_grafana_on_these_files():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    tabcasts = {name for name, service in services.items() if service.get("image", "").startswith("tabcast")}
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "tabcast")
    targets = {target for group in job["static_configs"] for target in group["targets"]}
    assert targets == {f"{name}:8000" for name in tabcasts}, "scrape every Tabcast process of the compose file"
    assert job["metrics_path"] == "/metrics" and job["authorization"]["type"] == "Bearer"

    prometheus = services["prometheus"]
    for mount in prometheus["volumes"]:
        source, _, rest = mount.partition(":")
        if source.startswith("./"):
            assert (ROOT / "docker" / source).exists(), mount
    mounted = {mount.split(":")[1] for mount in prometheus["volumes"]}
    assert {"/etc/prometheus/prometheus.yml", "/etc/prometheus/alerts.yml"} <= mounted
    assert config["rule_files"] == ["alerts.yml"]
    secret = prometheus["secrets"][0]
    assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    assert compose["secrets"][secret] == {"environment": "TABCAST_METRICS_TOKEN"}
    for name in tabcasts:  # the token the processes check is the one Prometheus sends
        assert services[name]["environment"]["TABCAST_METRICS_TOKEN"].startswith("${TABCAST_METRICS_TOKEN:?")

    grafana = services["grafana"]
    mounts = dict(mount.split(":")[:2] for mount in grafana["volumes"] if mount.startswith("./"))
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "tabcast.yml").read_text())["providers"][0]
    assert mounts["./grafana/tabcast.json"] == f"{provider['options']['path']}/tabcast.json"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    for name in ("prometheus", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), "localhost only"


# --- the names, against a real server ---


def documented_metrics() -> set[str]:
    return set(re.findall(r"^\| `(tabcast_[a-z0-9_]+)`", (ROOT / "docs" / "metrics.md").read_text(), re.M))


def served_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        names.update(sample.name for sample in family.samples)
    return names


@pytest.mark.redis
def test_every_metric_the_alerts_and_the_dashboard_use_is_served_and_documented(redis_server):
    used = set()
    for rule in alerts().values():
        used |= metric_names(rule["expr"])
    for expr in dashboard_exprs():
        used |= metric_names(expr)
    assert len(used) > 20, used

    token = "scrape-me-" + "x" * 16
    server = TabcastProcess(redis_url=redis_server.url, extra_env={
        "TABCAST_METRICS_TOKEN": token, "TABCAST_METRICS_APPS": "1"}).start()
    try:
        app = server.create_app("monitored")
        python_backend(app).trigger("news", "hello", {"n": 1})  # some traffic
        request = urllib.request.Request(f"{server.http}/metrics", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            scraped = response.read().decode()
    finally:
        server.stop()
    served = served_names(scraped)
    assert not used - served, f"queried but not served by /metrics: {sorted(used - served)}"
    documented = documented_metrics()
    assert not used - documented, f"queried but not in docs/metrics.md: {sorted(used - documented)}"
