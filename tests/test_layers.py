"""Layers depend downward only: the core imports no task, nor the API, CLI, server or reports."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import skysift
from skysift.core.task import task_names

PACKAGE = Path(skysift.__file__).parent
OUTER = ("api", "cli", "serving", "report", "explore", "demo", "export", "datasets")


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Absolute module names imported by the file at ``path`` (relative imports resolved)."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    package = list(rel.parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                names = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
            found += [(node.lineno, n) for n in names]
    return found


def _forbidden_for_core() -> tuple[str, ...]:
    return tuple(f"skysift.{m}" for m in (*OUTER, *task_names()))


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_imports_nothing_above_it(path):
    forbidden = _forbidden_for_core()
    bad = [(line, mod) for line, mod in _imported_modules(path)
           if mod == "skysift" or any(mod == f or mod.startswith(f + ".") for f in forbidden)]
    assert not bad, f"{path.name} imports upward: {bad}"


@pytest.mark.parametrize("task", task_names())
def test_a_task_imports_no_other_task_and_no_outer_layer(task):
    others = tuple(f"skysift.{m}" for m in (*OUTER, *(t for t in task_names() if t != task)))
    for path in sorted((PACKAGE / task).rglob("*.py")):
        bad = [(line, mod) for line, mod in _imported_modules(path)
               if any(mod == f or mod.startswith(f + ".") for f in others)]
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_checker_sees_a_planted_upward_import():
    planted = PACKAGE / "core" / "_planted_for_test.py"
    planted.write_text("from ..api import load\nfrom .. import cli\n", encoding="utf-8")
    try:
        mods = [m for _, m in _imported_modules(planted)]
        assert "skysift.api" in mods and "skysift.cli" in mods
        with pytest.raises(AssertionError):
            test_core_imports_nothing_above_it(planted)
    finally:
        planted.unlink()
