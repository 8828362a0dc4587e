"""The docker/ deployment's security settings (issue 9, finding 6): `check --deploy` is clean with
its environment, it never answers to any Host, and a real server run with that environment sends
Secure cookies and HSTS, redirects plain HTTP, and still answers its health checks."""

import os
import re
import secrets
import subprocess

import pytest
import requests
import yaml

from tests.support.processes import PYTHON, ROOT, TabcastProcess

DOCKER = ROOT / "docker"
HOST = "tabcast.example.com"


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def interpolate(value: str, given: dict) -> str:
    """Docker Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, from ``given``."""
    def one(match):
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if given.get(name):
            return given[name]
        if op == ":?":
            raise KeyError(f"compose requires {name}: {arg}")
        return arg if op == ":-" else ""
    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", one, str(value))


def tabcast_env(given: dict) -> dict:
    services = [s for s in compose()["services"].values() if s.get("image", "").startswith("tabcast")]
    envs = [{k: interpolate(v, given) for k, v in s["environment"].items()} for s in services]
    assert envs and all(env == envs[0] for env in envs)
    return envs[0]


def test_compose_requires_the_allowed_hosts_and_never_defaults_to_any_host():
    given = {"TABCAST_SECRET_KEY": "x" * 50, "TABCAST_METRICS_TOKEN": "scrape-token"}
    with pytest.raises(KeyError, match="TABCAST_ALLOWED_HOSTS"):
        tabcast_env(given)
    env = tabcast_env({**given, "TABCAST_ALLOWED_HOSTS": HOST})
    assert env["TABCAST_ALLOWED_HOSTS"] == HOST
    assert "*" not in compose()["x-tabcast"]["environment"]["TABCAST_ALLOWED_HOSTS"]


def test_manage_check_deploy_is_clean_with_the_docker_environment(tmp_path):
    env = tabcast_env({"TABCAST_SECRET_KEY": secrets.token_urlsafe(50), "TABCAST_METRICS_TOKEN": "scrape-token", "TABCAST_ALLOWED_HOSTS": HOST})
    assert env["TABCAST_SECURE_COOKIES"] == env["TABCAST_SSL_REDIRECT"] == env["TABCAST_BEHIND_TLS_PROXY"] == "1"
    base = {k: v for k, v in os.environ.items() if not k.startswith("TABCAST_") and k not in ("REDIS_URL", "DATABASE_URL")}
    result = subprocess.run([PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env={**base, **env, "TABCAST_VAR_DIR": str(tmp_path)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_nginx_passes_on_the_tls_terminators_scheme():
    config = (DOCKER / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-Proto $forwarded_proto;" in config
    assert re.search(r"map \$http_x_forwarded_proto \$forwarded_proto \{\s*default \$scheme;\s*https\s+https;", config)


def test_nginx_keeps_reset_and_invitation_tokens_out_of_its_access_log():
    config = (DOCKER / "nginx.conf").read_text()
    assert re.search(r"^\s*access_log \S+ combined if=\$loggable;$", config, re.M)
    rules = dict(re.findall(r"^\s*(~\S+|default)\s+([01]);$", config.split("map $request_uri $loggable")[1], re.M))
    unlogged = [pattern[1:] for pattern, flag in rules.items() if flag == "0"]
    for path in ("/password-reset/MQ/cdv0aa-0123456789abcdef/", "/invite/aBcD_123/"):
        assert any(re.match(pattern, path) for pattern in unlogged), path
    assert not any(re.match(pattern, "/password-reset/") for pattern in unlogged)  # the form itself is fine


@pytest.fixture(scope="module")
def deployed():
    """A server with the docker/ environment's HTTPS settings (embedded, on a free port)."""
    env = tabcast_env({"TABCAST_SECRET_KEY": secrets.token_urlsafe(50), "TABCAST_METRICS_TOKEN": "scrape-token",
                       "TABCAST_ALLOWED_HOSTS": f"{HOST},127.0.0.1"})
    https = {k: v for k, v in env.items() if k.startswith(("TABCAST_SECURE", "TABCAST_SSL", "TABCAST_HSTS",
                                                            "TABCAST_BEHIND", "TABCAST_ALLOWED", "TABCAST_SECRET"))}
    process = TabcastProcess(extra_env=https).start()  # its start-up probe proves /healthz answers plain HTTP
    yield process
    process.stop()


def test_the_deployed_server_uses_secure_cookies_hsts_and_redirects_to_https(deployed):
    plain = requests.get(f"{deployed.http}/login/", headers={"Host": HOST}, allow_redirects=False, timeout=10)
    assert (plain.status_code, plain.headers["Location"]) == (301, f"https://{HOST}/login/")

    behind_tls = {"Host": HOST, "X-Forwarded-Proto": "https"}
    page = requests.get(f"{deployed.http}/login/", headers=behind_tls, timeout=10)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    csrf = next(c for c in page.cookies if c.name == "csrftoken")
    assert csrf.secure
    # requests keeps Secure cookies for https:// URLs; the TLS terminator would pass it on, so do we.
    login = requests.post(f"{deployed.http}/login/", headers={**behind_tls, "Referer": f"https://{HOST}/login/",
                                                              "Cookie": f"csrftoken={csrf.value}"},
                          data={"username": "nobody@example.com", "password": "x",
                                "csrfmiddlewaretoken": csrf.value}, allow_redirects=False, timeout=10)
    assert login.status_code == 200  # the form answered (CSRF passed over "https"): bad credentials

    forged = requests.get(f"{deployed.http}/login/", headers={"Host": "evil.example", "X-Forwarded-Proto": "https"},
                          timeout=10)
    assert forged.status_code == 400


def test_the_compose_health_check_passes_with_only_real_host_names_allowed(deployed):
    check = next(s for s in compose()["services"].values() if s.get("image", "").startswith("tabcast"))
    kind, *command = check["healthcheck"]["test"]
    assert kind == "CMD"
    command = [part.replace("127.0.0.1:8000", f"127.0.0.1:{deployed.port}") for part in command]
    command = [PYTHON if c == "python" else c for c in command]

    def probe(allowed_hosts: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, env={**os.environ, "TABCAST_ALLOWED_HOSTS": allowed_hosts},
                              capture_output=True, text=True, timeout=30)

    healthy = probe(f".{HOST},other.example")  # a leading-dot (subdomain) entry works too
    assert healthy.returncode == 0, healthy.stderr
    # It sends the first configured host name, not its own 127.0.0.1 (which this server happens to allow):
    assert probe("unknown.example").returncode != 0
