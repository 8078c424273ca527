"""Golden logs written by earlier schema versions keep importing, folding and exporting."""

import io
import json
import os
from pathlib import Path
from typing import Any

from simulator.cli.logview import export_log, import_log
from simulator.eventlog import verify
from simulator.logfiles import open_log
from simulator.projections import CaseProjection, catch_up
from simulator.records import MESSAGE_SCHEMA_VERSION
from simulator.report import build_report, render_json, save_report
from tests.logs import WALL

GOLDEN = Path(__file__).parent.parent / "golden"


async def test_v1_log_upgrades_on_load_and_folds(tmp_path: Path) -> None:
    """A version-1 log imports with its hashes, verifies, and folds to the expected cases."""
    log = tmp_path / "v1.db"
    count = await import_log(GOLDEN / "v1-drill.jsonl", str(log), now=lambda: WALL)
    assert count == 9
    assert (await verify(log)).ok
    async with open_log(log, read_only=True) as store:
        events = [e async for e in store.read()]
        raw = [e async for e in store.read(upgrade=False)]
        cases = CaseProjection()
        await catch_up(store, cases)
    messages = [e for e in events if e.type.startswith("coop.msg.")]
    assert {e.schemaversion for e in messages} == {MESSAGE_SCHEMA_VERSION}
    assert all(e.data["violations"] is None and "message" in e.data for e in messages)
    assert {e.schemaversion for e in raw if e.type.startswith("coop.msg.")} == {1}
    assert {k: v.state.value for k, v in cases.cases.items()} == {
        "case-1": "refused",
        # Accepted before its written confirmation: urgency allows it (Art. 4.2). A
        # version-1 log recorded no verdicts, so today's rules judge it.
        "case-2": "in_execution",
        "case-3": "completed",
    }
    assert len(cases.findings) == 3
    assert cases.divergences == []


async def test_v1_log_exports_byte_for_byte(tmp_path: Path) -> None:
    """Export never upgrades: importing and exporting the golden file gives it back exactly."""
    log = tmp_path / "v1.db"
    await import_log(GOLDEN / "v1-drill.jsonl", str(log), now=lambda: WALL)
    out = io.StringIO()
    await export_log(str(log), out)
    assert out.getvalue() == (GOLDEN / "v1-drill.jsonl").read_text(encoding="utf-8")


async def test_v1_log_still_reports(tmp_path: Path) -> None:
    """The after-action report reads a version-1 log and finds the recomputed violations."""
    log = tmp_path / "v1.db"
    await import_log(GOLDEN / "v1-drill.jsonl", str(log), now=lambda: WALL)
    async with open_log(log, read_only=True) as store:
        report = await build_report(store)
    files = save_report(report, tmp_path / "report")
    text = files.markdown.read_text(encoding="utf-8")
    assert "refusal-without-reasons" in text
    assert files.html.stat().st_size > 1000


# --- version 2: today's format ------------------------------------------------------

# Rewrites the golden reports from today's code, on purpose (a deliberate report change).
REWRITE = os.environ.get("SIMULATOR_REWRITE_GOLDEN") == "1"


async def _import(name: str, tmp_path: Path) -> Path:
    log = tmp_path / f"{name}.db"
    await import_log(GOLDEN / f"{name}.jsonl", str(log), now=lambda: WALL)
    return log


async def _fold(log: Path) -> CaseProjection:
    async with open_log(log, read_only=True) as store:
        cases = CaseProjection()
        await catch_up(store, cases)
    return cases


def _assert_golden(got: str, golden: Path, log_id: str) -> None:
    """Equal to the golden file line for line, but for the log id that each import makes up."""
    expected_id = json.loads(golden.with_suffix("").with_suffix(".report.json").read_text())[
        "summary"
    ]["log_id"]
    got = got.replace(log_id, expected_id)
    if REWRITE:
        golden.write_text(got, encoding="utf-8")
    want = golden.read_text(encoding="utf-8")
    for number, (a, b) in enumerate(zip(got.splitlines(), want.splitlines(), strict=False), 1):
        assert a == b, f"{golden.name}: line {number} differs:\n got: {a}\nwant: {b}"
    assert got == want, f"{golden.name}: same lines up to the shorter file, lengths differ"


async def _report_matches(name: str, tmp_path: Path) -> None:
    log = await _import(name, tmp_path)
    async with open_log(log, read_only=True) as store:
        report = await build_report(store)
    files = save_report(report, tmp_path / f"{name}-report")
    log_id = report.summary.log_id or ""
    _assert_golden(files.json.read_text(encoding="utf-8"), GOLDEN / f"{name}.report.json", log_id)
    _assert_golden(files.markdown.read_text(encoding="utf-8"), GOLDEN / f"{name}.report.md", log_id)


async def test_v2_example_log_loads_and_folds_as_recorded(tmp_path: Path) -> None:
    """A run of example.yaml in today's format verifies and folds to what the umpire recorded."""
    log = await _import("v2-example", tmp_path)
    assert (await verify(log)).ok
    cases = await _fold(log)
    assert {k: v.state.value for k, v in cases.cases.items()} == {
        "energy-1": "completed",
        "cargo-1": "refused",
        "routine-0001": "in_execution",
        "routine-0002": "refused",
        "routine-0003": "completed",
        "routine-0004": "completed",
        "routine-0005": "completed",
    }
    assert [f.violation.rule_id for f in cases.findings] == ["refusal-without-consultation"]
    assert cases.divergences == []


async def test_v2_example_log_reproduces_its_report(tmp_path: Path) -> None:
    """The report of the golden run is the golden report, line for line."""
    await _report_matches("v2-example", tmp_path)


# The positions the umpire of the day flagged not-allowed-in-state and today's rules allow.
V2_VERDICTS_FLAGGED = [3, 4, 8, 10, 11, 14, 15, 17]


async def test_v2_verdicts_log_keeps_its_verdicts(tmp_path: Path) -> None:
    """The plays issue 14 allowed, recorded as breaches before it: the verdicts stay, diverging."""
    log = await _import("v2-verdicts", tmp_path)
    assert (await verify(log)).ok
    cases = await _fold(log)
    # Today's reading of the messages: the oral request acted on before its written
    # confirmation is completed, no longer stuck at `received` with its results.
    assert {k: v.state.value for k, v in cases.cases.items()} == {
        "case-oral": "completed",
        "case-partial": "completed",
        "case-secret": "completed",
        "case-info": "completed",
    }
    assert [f.position for f in cases.findings] == V2_VERDICTS_FLAGGED
    assert {f.violation.rule_id for f in cases.findings} == {"not-allowed-in-state"}
    assert [d.position for d in cases.divergences] == V2_VERDICTS_FLAGGED
    assert all(d.recomputed == () for d in cases.divergences)


def _findings(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (group["article"], rule["rule_id"], f["position"], f["case"], f["party"], f["message_id"])
        for group in report["violations"]
        for rule in group["rules"]
        for f in rule["findings"]
    ]


def _steps(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (e["position"], e["case"], e["type"], e["sender"], e["recipient"], len(e["findings"]))
        for e in report["timeline"]
    ]


async def test_v2_verdicts_log_reports_its_recorded_verdicts(tmp_path: Path) -> None:
    """Its report shows the violations of the day, as the golden report did, and the divergences."""
    log = await _import("v2-verdicts", tmp_path)
    async with open_log(log, read_only=True) as store:
        report = json.loads(render_json(await build_report(store)))
    golden = json.loads((GOLDEN / "v2-verdicts.report.json").read_text(encoding="utf-8"))
    # The findings of the day, as that day's report listed them: the same rules at the
    # same positions, cases, parties and messages (how a report words them may change).
    assert _findings(report) == _findings(golden)
    assert _steps(report) == _steps(golden)
    assert report["summary"]["violations"] == golden["summary"]["violations"] == 8
    assert report["summary"]["divergences"] == V2_VERDICTS_FLAGGED
    assert golden["summary"]["divergences"] == []
    states = {c["case_id"]: c["state"] for c in report["cases"]}
    assert states["case-oral"] == "completed"
