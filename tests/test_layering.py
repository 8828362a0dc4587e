"""Dependencies run one way: the engine (service/) imports neither tenants nor billing; tenants
imports neither billing nor live; live (the dashboard's live feeds and debug console) does not
import billing. Billing reaches the engine through the hooks in settings (APP_SOURCE,
LIMITS_SOURCE), so no import circle can come back unnoticed."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_top_packages(package: str) -> dict[str, set[str]]:
    """file -> top-level packages it imports (at module level or inside functions)."""
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(("package", "must_not_import"), [
    ("service", {"tenants", "billing", "live"}),
    ("tenants", {"billing", "live"}),
    ("live", {"billing"}),  # billing's usage page shows the live feed, not the other way round
])
def test_dependencies_run_one_way(package, must_not_import):
    imports = imported_top_packages(package)
    assert len(imports) > 5  # the scan sees the package
    offenders = {path: sorted(names & must_not_import) for path, names in imports.items() if names & must_not_import}
    assert not offenders, offenders
