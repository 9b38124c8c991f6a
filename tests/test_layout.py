"""The house rules of shared/STYLE.md and docs/architecture.md that a machine can check, in the three homes:
modules stay under 400 lines and functions under 60, no function takes more than 6 parameters besides
``self``/``cls`` (keyword-only ones included), no module imports a private name (``_x``) from another, and
nothing reaches into argparse's private attributes. The import contracts are tools/lint_imports.sh's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOMES = ("accel", "delegates", "kernels")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_PARAMETERS = 6


def _modules() -> list[Path]:
    return sorted(p for home in HOMES for p in (ROOT / home).rglob("*.py"))


def _project() -> list[Path]:
    """Every module of the project: the homes, and tests, bench and tools."""
    return sorted(p for home in (*HOMES, "tests", "bench", "tools") for p in (ROOT / home).rglob("*.py"))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return names + [f"*{v.arg}" for v in (a.vararg, a.kwarg) if v is not None]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines: is there a seam to split along?"
    tree = ast.parse(text)
    long = [(fn.name, fn.end_lineno - fn.lineno + 1) for fn in _functions(tree)
            if fn.end_lineno is not None and fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines in {path.name}: {long}"
    many = [(fn.name, len(_parameters(fn))) for fn in _functions(tree) if len(_parameters(fn)) > MAX_PARAMETERS]
    assert not many, f"functions over {MAX_PARAMETERS} parameters in {path.name}: {many} (group what travels together)"


@pytest.mark.parametrize("path", _project(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_names_across_modules(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    private = [f"from {node.module} import {alias.name}" for node in ast.walk(ast.parse(text))
               if isinstance(node, ast.ImportFrom) for alias in node.names
               if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not private, f"{path.name} imports private names: {private}; make them public where they are owned"
    if path.name != "test_layout.py":  # which names this very check for
        assert "._actions" not in text and "_SubParsersAction" not in text, \
            f"{path.name} reaches into argparse's private attributes"


def test_the_rules_catch_what_they_name() -> None:
    """The checks above on a hand-written module that breaks each rule once."""
    bad = ast.parse("from accel.run.worker import _printed\n"
                    "def f(a, b, c, d, e, f, *, g): pass\n"
                    "class C:\n    def m(self, a, b, c, d, e, f): pass\n")
    counts = {fn.name: len(_parameters(fn)) for fn in _functions(bad)}
    assert counts == {"f": 7, "m": 6}
    imports = [a.name for n in ast.walk(bad) if isinstance(n, ast.ImportFrom) for a in n.names]
    assert imports == ["_printed"]
