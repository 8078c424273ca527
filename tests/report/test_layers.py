"""Reports read projections of the log, never the live objects of a running exercise."""

import ast
from pathlib import Path

import simulator.report

PACKAGE = Path(simulator.report.__file__).parent
LIVE = (
    "simulator.exercise",
    "simulator.umpire",
    "simulator.party",
    "simulator.transport",
    "simulator.brokers",
    "simulator.sequencer",
    "simulator.policy",
    "simulator.bus",
)


def test_the_report_imports_nothing_of_a_live_run() -> None:
    """No module of simulator.report imports the exercise, umpire, parties, transport or brokers."""
    offenders = []
    for module in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{module.name}: {n}" for n in names if n.startswith(LIVE)]
    assert offenders == []
