"""Golden logs written by earlier schema versions keep importing, folding and exporting."""

import io
from pathlib import Path

from simulator.cli.logview import export_log, import_log
from simulator.eventlog import verify
from simulator.logfiles import open_log
from simulator.projections import CaseProjection, catch_up
from simulator.records import MESSAGE_SCHEMA_VERSION
from simulator.report import build_report, save_report
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
        "case-2": "awaiting_written_confirmation",
        "case-3": "completed",
    }
    assert len(cases.findings) == 4
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
