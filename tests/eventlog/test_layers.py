"""Layering: the event log is an adapter that knows nothing of the protocol it stores."""

import ast
from pathlib import Path

import simulator.eventlog

PACKAGE = Path(simulator.eventlog.__file__).parent


def test_the_event_log_imports_nothing_from_the_protocol() -> None:
    """No module of simulator.eventlog imports simulator.protocol; event data stays opaque."""
    offenders = []
    for module in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{module.name}: {n}" for n in names if n.startswith("simulator.protocol")
            ]

    assert offenders == []
