"""The terminal at 80 columns: `log show`, `rules` and the run summary fold, never split.

Rich folds a table's text into its columns; an event type, a date or a time must
never be cut across lines, and the sentences must be whole.
"""

import asyncio
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.logfiles import open_log
from simulator.protocol import RULES
from tests.report.drill import write_desk

NARROW = {"COLUMNS": "80"}
SCENARIOS = Path(__file__).parents[1] / "scenarios"
# The start of a date, and a whole date with its time: every start must be a whole one.
DATE_START = re.compile(r"\b\d{4}-")
WHOLE_DATE = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b")


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


def _narrow(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=NARROW)
    assert result.exit_code == 0, result.output
    return result.stdout


def _fits(text: str) -> None:
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert len(DATE_START.findall(text)) == len(WHOLE_DATE.findall(text)), text


def test_log_show_keeps_each_events_position_time_and_type_on_one_line(tmp_path: Path) -> None:
    """Every event's row starts with its position, whole time and whole type; notes show."""
    log = tmp_path / "desk.db"
    asyncio.run(write_desk(log))
    out = _narrow("log", "show", str(log))
    _fits(out)

    async def events() -> list[tuple[int, str, str]]:
        async with open_log(log, read_only=True) as store:
            return [
                (e.position, e.time.strftime("%Y-%m-%d %H:%M"), e.type.removeprefix("coop.msg."))
                async for e in store.read()
            ]

    lines = out.splitlines()
    for position, time, kind in asyncio.run(events()):
        row = re.compile(rf"^\s*{position}\s+{time}\s+{re.escape(kind)}(\s|$)")
        assert any(row.search(line) for line in lines), (position, time, kind)
    flat = " ".join(out.split())
    assert "note: Beta accepted case-1 without acknowledging it." in flat
    assert "the controller sent inject lorry by hand" in flat
    assert "this run is a fork (generation 1) of runs/parent.db, from its first 4 events" in flat


def test_rules_gives_every_rule_its_whole_sentence(tmp_path: Path) -> None:
    """Each rule's id stands whole on a line, and what it requires reads in full."""
    out = _narrow("rules")
    _fits(out)
    lines = out.splitlines()
    flat = " ".join(out.split())
    for rule in RULES:
        assert any(re.search(rf"(^|\s){re.escape(rule.id)}(\s|$)", line) for line in lines)
        assert " ".join(rule.summary.split()) in flat, rule.id


def test_the_run_summary_names_case_and_finding_of_each_violation(tmp_path: Path) -> None:
    """`run` at 80 columns: each violation's case and rule on one line, what happened in words."""
    summary = tmp_path / "summary.json"
    out = _narrow(
        "run",
        str(SCENARIOS / "registry-mixups.yaml"),
        "--log",
        str(tmp_path / "run.db"),
        "--json-summary",
        str(summary),
    )
    _fits(out)
    violations = json.loads(summary.read_text(encoding="utf-8"))["violations"]
    assert violations
    lines = out.splitlines()
    flat = " ".join(out.split())
    for v in violations:
        assert any(v["case"] in line and v["rule"] in line for line in lines), v
        assert " ".join(v["what"].split()) in flat, v
        assert "_" not in v["what"].replace(v["case"], ""), v


def test_a_forks_summary_says_it_is_a_fork(tmp_path: Path) -> None:
    """`fork` prints the parent, the position kept and the generation."""
    parent = tmp_path / "parent.db"
    _narrow("run", str(SCENARIOS / "registry-mixups.yaml"), "--log", str(parent))
    out = _narrow("fork", str(parent), "--at", "5", "-o", str(tmp_path / "fork.db"))
    _fits(out)
    assert "this run is a fork (generation 1) of" in out
    assert "from its first 5 events" in " ".join(out.split())


def test_a_scenarios_own_words_in_the_summary_are_never_markup_nor_terminal_codes(
    tmp_path: Path,
) -> None:
    """An expectation described with `[/bold]` had crashed the summary (a Rich MarkupError,
    exit 1) after the whole run was logged; `[link]` vanished and ESC reached the terminal."""
    text = (SCENARIOS / "example.yaml").read_text(encoding="utf-8")
    described = "description: The first routine request is completed"
    assert described in text
    scenario = tmp_path / "marked.yaml"
    scenario.write_text(
        text.replace(described, 'description: "[/bold] done [link] \\e[31m red"'),
        encoding="utf-8",
    )
    output = _narrow("run", str(scenario), "--log", str(tmp_path / "run.db"))
    assert "[/bold] done [link]" in output
    assert "\x1b[31m" not in output
    assert "\\x1b[31m" in output
