"""The layout shows the architecture: each package imports only what its docstring allows.

Read from the source (every ``import``, including those inside functions), so a forbidden
dependency fails here rather than in a reviewer's head.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the cowlab packages its modules may import (beyond themselves and the stdlib).
ALLOWED = {
    "engine": {"engine"},
    "app.picture": {"app.picture", "engine"},
    "app.views": {"app.views", "app.picture", "engine"},
    "app.http": {
        "app.http",
        "app.views",
        "app.picture",
        "app.probe",
        "app.live",
        "app.cexport",
        "app.paths",
        "engine",
    },
    "app.cexport": {"app.cexport", "app.probe", "app.views", "app.cli", "engine"},
}
COWLAB = ("engine", "app")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from app import x` may name a module: count `app.x` as imported too.
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def forbidden(package: str, allowed: set[str]) -> list[str]:
    found = []
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        for name in sorted(imported_modules(path)):
            if name.split(".")[0] not in COWLAB or name in COWLAB:
                continue
            if not any(name == ok or name.startswith(ok + ".") for ok in allowed):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_its_docstring_allows(package: str) -> None:
    assert forbidden(package, ALLOWED[package]) == []


def test_the_check_sees_an_import_hidden_in_a_function(tmp_path: Path) -> None:
    module = tmp_path / "late.py"
    module.write_text("def f() -> None:\n    from app.http import render\n")
    assert {"app.http", "app.http.render"} <= imported_modules(module)
