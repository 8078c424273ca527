"""The protocol package stays pure: no I/O, no clock, no randomness (STYLE 2, DESIGN 4-5)."""

import ast
from pathlib import Path

import pytest

import simulator.protocol

PURE_PACKAGES = [Path(simulator.protocol.__file__).parent]

# An allow-list, not a deny-list: a new import has to be judged pure to get in.
ALLOWED_TOP_LEVEL = {
    "__future__",
    "collections",
    "dataclasses",
    "datetime",
    "enum",
    "functools",
    "itertools",
    "re",
    "typing",
    "unicodedata",
    "pydantic",
    "simulator",
}
# Named explicitly so a failure says why, should the allow-list ever grow carelessly.
FORBIDDEN = {
    "asyncio",
    "aiomqtt",
    "paho",
    "amqtt",
    "sqlite3",
    "psycopg",
    "socket",
    "ssl",
    "select",
    "selectors",
    "subprocess",
    "threading",
    "multiprocessing",
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "time",
    "random",
    "uuid",
    "secrets",
    "logging",
    "structlog",
    "urllib",
    "http",
}
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}
FORBIDDEN_ATTRIBUTES = {"now", "utcnow", "today"}


def _modules() -> list[Path]:
    return sorted(p for package in PURE_PACKAGES for p in package.rglob("*.py"))


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_pure_module_imports_no_io(path: Path) -> None:
    """Every import of a pure module is on the allow-list and none is an I/O module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for module, line in _imports(tree):
        top = module.split(".")[0]
        assert top not in FORBIDDEN, f"{path}:{line} imports {module}, an I/O or impure module"
        assert top in ALLOWED_TOP_LEVEL, f"{path}:{line} imports {module}, not judged pure"
        if top == "simulator":
            assert module.startswith("simulator.protocol"), f"{path}:{line} imports {module}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_pure_module_reads_no_clock_and_does_no_io(path: Path) -> None:
    """No pure module calls open/print or reads the wall clock (time is passed in)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id not in FORBIDDEN_CALLS, f"{path}:{node.lineno} calls {func.id}"
            if isinstance(func, ast.Attribute):
                assert func.attr not in FORBIDDEN_ATTRIBUTES, (
                    f"{path}:{node.lineno} calls .{func.attr}()"
                )


def test_the_check_catches_an_io_import(tmp_path: Path) -> None:
    """The import check itself recognises a forbidden import (guards against a vacuous test)."""
    tree = ast.parse("import sqlite3\nfrom asyncio import sleep\nimport os.path\n")
    tops = {module.split(".")[0] for module, _ in _imports(tree)}
    assert tops == {"sqlite3", "asyncio", "os"}
    assert tops <= FORBIDDEN
