"""Every third-party package the tests import is declared directly, in requirements.txt or
requirements-dev.txt, not just installed as some other package's dependency (issue 13)."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project's own packages: every top-level directory that is a Python package.
OURS = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()}


def imported_top_level_modules() -> dict[str, str]:
    found = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OURS:
                    found.setdefault(top, path.relative_to(ROOT).as_posix())
    return found


def declared() -> set[str]:
    names = set()
    for file in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / file).read_text().splitlines():
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#")[0])
            if match and not line.strip().startswith("-"):
                names.add(normal(match.group(1)))
    return names


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_test_import_is_a_declared_requirement():
    distributions = packages_distributions()
    wanted = declared()
    undeclared = {}
    for module, where in imported_top_level_modules().items():
        names = {normal(d) for d in distributions.get(module, [])}
        assert names, f"{module} (imported by {where}) is not installed"
        if not names & wanted:
            undeclared[module] = (sorted(names), where)
    assert not undeclared, f"imported by tests but not declared in requirements(-dev).txt: {undeclared}"
