"""README's configuration table and the environment the code reads stay in step, and bad values
fail at start with a message naming the variable (issue 13, Operators)."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PY_DIRS = ("service", "tenants", "billing")
SHELL_FILES = ("bin/start", "bin/test", "docker/entrypoint.sh")
# bin/test's own knobs are for whoever runs the tests, not for operators of the service.
SHELL_SKIP = {"bin/test"}


def _env_read_name(node: ast.AST, constants: dict[str, str]) -> str | None:
    """The variable a call/subscript/`in` reads from the environment, if this node is such a read."""

    def literal(arg):
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        if isinstance(arg, ast.Name):
            return constants.get(arg.id)
        return None

    def is_environ(expr):
        return (isinstance(expr, ast.Attribute) and expr.attr == "environ") or (
            isinstance(expr, ast.Name) and expr.id == "environ")

    if isinstance(node, ast.Call) and node.args:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("get", "pop") and is_environ(func.value):
            return literal(node.args[0])
        if isinstance(func, ast.Attribute) and func.attr == "getenv":
            return literal(node.args[0])
        if isinstance(func, ast.Name) and (func.id == "getenv" or func.id.startswith("_env_")):
            return literal(node.args[0])
    if isinstance(node, ast.Subscript) and is_environ(node.value) and isinstance(node.ctx, ast.Load):
        return literal(node.slice)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
        if is_environ(node.comparators[0]):
            return literal(node.left)
    return None


def variables_read_by_code() -> dict[str, set[str]]:
    """Environment variable -> files that read it (Python reads, and ${VAR:-default} in scripts)."""
    found: dict[str, set[str]] = {}
    for top in PY_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/migrations/" in rel:
                continue
            tree = ast.parse(path.read_text(), rel)
            constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                         and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                         for t in n.targets if isinstance(t, ast.Name)}
            for node in ast.walk(tree):
                name = _env_read_name(node, constants)
                if name and name != "DJANGO_SETTINGS_MODULE":  # Django's own, set by manage.py/asgi.py
                    found.setdefault(name, set()).add(rel)
    for rel in SHELL_FILES:
        if rel in SHELL_SKIP or not (ROOT / rel).exists():
            continue
        for name in re.findall(r"\$\{([A-Z][A-Z0-9_]*):?[-=]", (ROOT / rel).read_text()):
            found.setdefault(name, set()).add(rel)
    return found


def variables_in_readme() -> set[str]:
    """Names in the first column of README's "## Configuration" table. `_PORT` after
    `TABCAST_SMTP_HOST` is shorthand for TABCAST_SMTP_PORT."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        first_cell = line.split("|")[1]
        previous = None
        for token in re.findall(r"`([A-Za-z0-9_]+)`", first_cell):
            if token.startswith("_") and previous:
                names.add(previous.rsplit("_", 1)[0] + token)
            elif re.fullmatch(r"[A-Z][A-Z0-9_]+", token):
                names.add(token)
                previous = token
    return names


def test_code_reads_some_variables_and_the_parser_sees_them():
    code = variables_read_by_code()
    # The extractor itself must work, or the comparison below proves nothing.
    for name in ("REDIS_URL", "TABCAST_NODE_TTL", "TABCAST_DEBUG", "TABCAST_VAR_DIR", "STRIPE_SECRET_KEY",
                 "PROMETHEUS_MULTIPROC_DIR", "PORT"):
        assert name in code, name
    readme = variables_in_readme()
    assert {"REDIS_URL", "TABCAST_SMTP_PORT", "TABCAST_PONG_GRACE"} <= readme


def test_readme_table_lists_exactly_the_variables_the_code_reads():
    code = variables_read_by_code()
    readme = variables_in_readme()
    undocumented = {name: sorted(files) for name, files in code.items() if name not in readme}
    assert not undocumented, f"read by the code but missing from README's configuration table: {undocumented}"
    stale = readme - set(code)
    assert not stale, f"in README's configuration table but read nowhere in the code: {sorted(stale)}"


def _check(**env) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TABCAST_")}
    environment.update(env)
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name, value, message", [
    ("TABCAST_NODE_TTL", "abc", "TABCAST_NODE_TTL must be a whole number of seconds (1 or more), got 'abc'"),
    ("TABCAST_NODE_TTL", "0", "TABCAST_NODE_TTL must be a whole number of seconds (1 or more), got '0'"),
    ("TABCAST_DRAIN_SECONDS", "-1", "TABCAST_DRAIN_SECONDS must be a number of seconds (0 or more), got '-1'"),
    ("TABCAST_HANDSHAKE_TIMEOUT", "nan", "TABCAST_HANDSHAKE_TIMEOUT must be a number of seconds (0 or more), got 'nan'"),
    ("TABCAST_MAX_PENDING_BYTES", "1MB", "TABCAST_MAX_PENDING_BYTES must be a whole number of bytes (1 or more), got '1MB'"),
    ("TABCAST_HTTP_RATE_PER_APP", "0", "TABCAST_HTTP_RATE_PER_APP must be a whole number of requests per second (1 or more), got '0'"),
    ("TABCAST_DEBUG", "maybe", "TABCAST_DEBUG must be on or off"),
    ("TABCAST_LOG_LEVEL", "loud", "TABCAST_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'LOUD'"),
])
def test_a_bad_value_fails_manage_py_check_with_a_clear_message(name, value, message):
    result = _check(**{name: value})
    assert result.returncode != 0, result.stdout
    assert f"Tabcast is misconfigured: {message}" in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


def test_good_values_pass_manage_py_check_and_keep_their_meaning():
    result = _check(TABCAST_NODE_TTL="45", TABCAST_DRAIN_SECONDS="2.5", TABCAST_DEBUG="off",
                    TABCAST_HANDSHAKE_TIMEOUT="0", TABCAST_LOG_LEVEL="warning")
    assert result.returncode == 0, result.stderr[-2000:]
    probe = ("from django.conf import settings as s; "
             "print(s.TABCAST['NODE_TTL'], s.TABCAST['DRAIN_SECONDS'], s.DEBUG, s.TABCAST['HANDSHAKE_TIMEOUT'])")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TABCAST_")}
    environment.update(TABCAST_NODE_TTL="45", TABCAST_DRAIN_SECONDS="2.5", TABCAST_DEBUG="off",
                       TABCAST_HANDSHAKE_TIMEOUT="0")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", probe], cwd=ROOT, env=environment,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["45", "2.5", "False", "0.0"], out.stderr[-2000:]
