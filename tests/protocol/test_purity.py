"""The pure code calls no I/O and reads no clock (STYLE 2, DESIGN 4-5).

What pure modules may import is an import contract ("pure", in pyproject.toml, run by
`lint-imports` in scripts/check). This test checks what imports cannot: calls of built-ins that
do I/O or run code, and reading the clock through any object, even an injected one.
"""

import ast
from pathlib import Path

import pytest

import simulator.protocol
import simulator.scenario

PROTOCOL = Path(simulator.protocol.__file__).parent
SCENARIO = Path(simulator.scenario.__file__).parent
# The scenario modules that touch files (the contracts "pure" and "scenario-model" say the same).
SCENARIO_IO = {"loader.py", "problems.py"}

FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}
FORBIDDEN_ATTRIBUTES = {"now", "utcnow", "today"}


def _modules() -> list[Path]:
    return sorted(PROTOCOL.rglob("*.py")) + sorted(
        p for p in SCENARIO.rglob("*.py") if p.name not in SCENARIO_IO
    )


def _offences(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{node.lineno} calls {func.id}")
            if isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_ATTRIBUTES:
                found.append(f"{node.lineno} calls .{func.attr}()")
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_module_reads_no_clock_and_does_no_io(path: Path) -> None:
    """No pure module calls open/print or reads the wall clock (time is passed in)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert _offences(tree) == [], path


def test_the_check_catches_io_and_the_clock() -> None:
    """The check itself recognises each kind of offence (guards against a vacuous test)."""
    tree = ast.parse("print(1)\nwith open('f') as f: pass\nclock.now()\ndate.today()\n")
    expected = ["1 calls print", "2 calls open", "3 calls .now()", "4 calls .today()"]
    assert sorted(_offences(tree)) == expected


def test_the_check_reads_both_pure_packages() -> None:
    """The scenario's pure modules are checked as well as the protocol."""
    names = {(p.parent.name, p.name) for p in _modules()}
    assert {("protocol", "case.py"), ("scenario", "model.py"), ("scenario", "delay.py")} <= names
    assert not any(name in SCENARIO_IO for _, name in names)
