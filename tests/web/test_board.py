"""The control view's board folds the log with the project's projections."""

from datetime import UTC, datetime
from pathlib import Path

from simulator.logfiles import open_log
from simulator.messaging.memory import MemoryHub
from simulator.messaging.topics import Topics
from simulator.messaging.wire import Ended
from simulator.party.outbox import Outgoing
from simulator.web.app import seat_snapshot
from simulator.web.board import CASES_SHOWN, Board
from simulator.web.player import PlayerSeat
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


def test_a_seats_unsent_message_is_shown_as_not_recorded_once_the_run_has_ended() -> None:
    """A message still in the seat's outbox when the run ended another way (its time ran
    out, `control stop`) was shown "waiting for the umpire" for good; nothing records it."""
    scenario = desk()
    parties = {p.id: p.party() for p in scenario.parties}
    seat = PlayerSeat(
        parties["southmere"],
        parties,
        scenario.protocol_agreement(),
        MemoryHub().connect("southmere"),
        Topics(scenario.exercise),
    )
    seat.session.outbox.items[1] = Outgoing(1, "southmere.1", "request", "water-1", b"{}")

    running = seat_snapshot(seat, training=False)
    seat.session.ended = Ended(head=7, time=datetime(2026, 1, 1, tzinfo=UTC), reason="time up")
    ended = seat_snapshot(seat, training=False)

    entry = {"seq": 1, "message_id": "southmere.1", "type": "request", "case": "water-1"}
    assert (running["pending"], running["not_recorded"]) == ([entry], [])
    assert (ended["pending"], ended["not_recorded"]) == ([], [entry])
    assert ended["ended"] == "time up"
