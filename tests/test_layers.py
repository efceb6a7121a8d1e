"""The floors of the package: each imports only from the floors below it, lazily or not.

core <- protein, tabular, training <- cli, app, pipelines (docs/architecture in ../shared).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "seqdiff"

# What each floor must never import (every import statement, also inside functions).
FORBIDDEN = {
    "core": ("seqdiff.protein", "seqdiff.tabular", "seqdiff.training", "seqdiff.cli", "seqdiff.ray_engine"),
    "protein": ("seqdiff.cli", "seqdiff.app_launch", "seqdiff.ray_engine"),
    "tabular": ("seqdiff.cli", "seqdiff.app_launch", "seqdiff.ray_engine"),
    "training": (
        "seqdiff.protein",
        "seqdiff.tabular",
        "seqdiff.cli",
        "seqdiff.app_launch",
        "seqdiff.ray_engine",
    ),
}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_a_floor_imports_nothing_above_it(floor: str) -> None:
    offending = []
    for path in sorted((PACKAGE / floor).rglob("*.py")):
        for name in imported_modules(path):
            if name.startswith(FORBIDDEN[floor]):
                offending.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert not offending, "\n".join(offending)


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from seqdiff.protein.esm import ESMDenoiser\n")
    assert "seqdiff.protein.esm" in imported_modules(module)


def test_no_module_is_longer_than_a_sitting() -> None:
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 460
    }
    assert not long, long
