"""The floors of docs/architecture.md hold: each top-level package imports only the floors below
it (building blocks < dataflows < front ends), anywhere in a module, lazy imports included."""

from __future__ import annotations

import ast

import pytest

from tests.paths import REPO

FLOORS = {"citebot": 1, "dataflows": 2, "bot": 3}


def _imports(path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(FLOORS))
def test_no_module_imports_a_floor_above_its_own(package: str) -> None:
    upward = []
    for path in sorted((REPO / package).rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in FLOORS and FLOORS[top] > FLOORS[package]:
                upward.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not upward, "\n".join(upward)


def test_product_code_never_imports_tests_or_benchmarks() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for package in FLOORS
        for path in sorted((REPO / package).rglob("*.py"))
        for line, module in _imports(path)
        if module.split(".")[0] in ("tests", "bench")
    ]
    assert not offenders, "\n".join(offenders)
