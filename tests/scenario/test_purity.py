"""The scenario model stays pure: no I/O, no clock, no randomness (STYLE 2, DESIGN 4-5)."""

import ast
from pathlib import Path

import pytest

import simulator.scenario

PACKAGE = Path(simulator.scenario.__file__).parent
# The loader reads files and the error module names paths; the rest is pure.
PURE_MODULES = ["model.py", "duration.py", "delay.py", "schema.py"]

ALLOWED_TOP_LEVEL = {
    "__future__",
    "collections",
    "dataclasses",
    "datetime",
    "difflib",
    "enum",
    "functools",
    "itertools",
    "math",
    "re",
    "typing",
    "pydantic",
    "pydantic_core",
    "simulator",
}
ALLOWED_SIMULATOR = (
    "simulator.protocol",
    "simulator.topics",
    "simulator.scenario.model",
    "simulator.scenario.duration",
    "simulator.scenario.delay",
)
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}
FORBIDDEN_ATTRIBUTES = {"now", "utcnow", "today"}


def _tree(name: str) -> ast.Module:
    path = PACKAGE / name
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_module_imports_only_pure_modules(name: str) -> None:
    """Every import of a pure scenario module is on the allow-list."""
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}:{node.lineno} imports relatively"
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            assert module.split(".")[0] in ALLOWED_TOP_LEVEL, (
                f"{name}:{node.lineno} imports {module}"
            )
            if module.startswith("simulator"):
                assert module.startswith(ALLOWED_SIMULATOR), (
                    f"{name}:{node.lineno} imports {module}"
                )


@pytest.mark.parametrize("name", PURE_MODULES)
def test_pure_module_does_no_io_and_reads_no_clock(name: str) -> None:
    """No pure scenario module calls open/print or reads the wall clock."""
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id not in FORBIDDEN_CALLS, f"{name}:{node.lineno} calls {func.id}"
            if isinstance(func, ast.Attribute):
                assert func.attr not in FORBIDDEN_ATTRIBUTES, (
                    f"{name}:{node.lineno} calls .{func.attr}()"
                )


def test_every_module_is_judged() -> None:
    """Each module of the package is either on the pure list or known to do I/O."""
    impure = {"__init__.py", "loader.py", "problems.py"}
    assert {p.name for p in PACKAGE.glob("*.py")} == set(PURE_MODULES) | impure
