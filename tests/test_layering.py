"""Dependencies run one way: the engine (service/) imports neither tenants nor billing, and tenants
does not import billing; billing reaches tenants through the hooks in settings (APP_SOURCE,
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
    ("service", {"tenants", "billing"}),
    ("tenants", {"billing"}),
])
def test_dependencies_run_one_way(package, must_not_import):
    imports = imported_top_packages(package)
    assert len(imports) > 5  # the scan sees the package
    offenders = {path: sorted(names & must_not_import) for path, names in imports.items() if names & must_not_import}
    assert not offenders, offenders
