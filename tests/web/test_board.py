"""The control view's board folds the log with the project's projections."""

from pathlib import Path

from simulator.logfiles import open_log
from simulator.web.board import CASES_SHOWN, Board
from tests.report.drill import many_cases, write_drill
from tests.web.conftest import desk


async def test_a_large_run_is_counted_whole_and_drawn_in_part(tmp_path: Path) -> None:
    """Every case counts in the states; only the most recently active are sent to draw."""
    log = tmp_path / "many.db"
    await write_drill(log, many_cases(CASES_SHOWN + 50))
    async with open_log(log, read_only=True) as store:
        events = [e async for e in store.read(1)]
    board = Board(desk())
    board.commit(events[:10])
    board.commit(events)  # overlapping deliveries apply each event once
    state = board.snapshot()
    assert state["head"] == events[-1].position
    assert state["cases_total"] == CASES_SHOWN + 50
    assert sum(s["count"] for s in state["states"]) == CASES_SHOWN + 50
    assert len(state["cases"]) == CASES_SHOWN
    assert {c["id"] for c in state["cases"]} >= {f"case-{CASES_SHOWN + 50:03d}"}
    assert "case-001" not in {c["id"] for c in state["cases"]}
    assert set(state["steps"]) == {c["id"] for c in state["cases"]}
    assert [s["type"] for s in state["steps"][f"case-{CASES_SHOWN + 50:03d}"]] == [
        "written_request",
        "acknowledgement",
        "acceptance",
    ]
