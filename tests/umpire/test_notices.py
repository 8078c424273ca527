"""The console's word on rejections: a flood of bad submissions is counted, not listed."""

import asyncio
import json
from pathlib import Path

from structlog.testing import capture_logs

from simulator.messaging.wire import Ended, Tick
from simulator.records import REJECTION
from simulator.scenario import parse_scenario
from simulator.umpire import UmpireSettings
from simulator.umpire.notices import Notices
from tests.runtime.test_exercise import exported
from tests.scenario.samples import two_parties
from tests.umpire.wiring import scripted_realtime


class _Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.lines.append((event, fields))


def test_each_partys_first_rejections_in_a_window_are_listed_and_the_rest_counted() -> None:
    """20 shown a window per party, then one line with the count once the window is over,
    and at the end whatever is left; another party's are its own."""
    now = [0.0]
    lines = _Lines()
    notices = Notices(lines, shown=20, window_s=10.0, clock=lambda: now[0])
    for seq in range(50):
        notices.warning("submission_rejected", "southmere", seq=seq, reason=f"bad {seq}")
    notices.warning("submission_rejected", "northmark", seq=1, reason="bad")
    notices.warning("report_ignored", "southmere", reason="not JSON")
    notices.flush_due()
    assert [e for e, _ in lines.lines].count("submission_rejected") == 21
    assert [e for e, _ in lines.lines].count("report_ignored") == 1
    assert "submission_rejected_not_shown" not in [e for e, _ in lines.lines]
    now[0] = 10.0
    notices.flush_due()
    [(_, summary)] = [line for line in lines.lines if line[0].endswith("_not_shown")]
    assert summary["party"] == "southmere"
    assert summary["count"] == 30
    assert summary["last"] == {"seq": 49, "reason": "bad 49"}
    # A new window: shown again, and the rest said at the end.
    lines.lines.clear()
    for seq in range(25):
        notices.warning("submission_rejected", "southmere", seq=seq, reason="bad")
    notices.flush()
    assert [e for e, _ in lines.lines] == ["submission_rejected"] * 20 + [
        "submission_rejected_not_shown"
    ]
    assert lines.lines[-1][1]["count"] == 5


async def test_a_flood_of_bad_submissions_is_all_in_the_log_and_counted_on_the_console(
    tmp_path: Path,
) -> None:
    """alpha's seat (the test) sends 300 malformed submissions and 300 malformed reports in a
    realtime run. Each submission is a rejection in the log, said to alpha; the console lists
    the first 20 of each kind and then says how many more. Before: 600 warnings, one per
    message, on the controller's console."""
    text = two_parties("flood", "A seat flooding the umpire", seed=5)
    scenario = parse_scenario(text, "tests/umpire/flood.yaml")
    settings = UmpireSettings(clock_tick_s=0.2, hold_s=0.5, party_timeout_s=1.0)
    flood = 300
    with capture_logs() as logged:
        async with scripted_realtime(
            scenario, tmp_path, speed=30 * 86_400 / 4, settings=settings
        ) as (ex, alpha, group):
            run = group.create_task(ex.run())
            async with asyncio.timeout(60):
                await alpha.next(Tick)
                for seq in range(1, flood + 1):
                    bad = {
                        "kind": "submission",
                        "party": "alpha",
                        "seq": seq,
                        "message": {"n": seq},
                    }
                    await alpha.bus.publish(ex.topics.submit("alpha"), json.dumps(bad).encode())
                    await alpha.bus.publish(ex.topics.report("alpha"), b"{not json %d" % seq)
                await alpha.next(Ended)
                await run
    events = await exported(ex.location)
    rejections = [e for e in events if e["type"] == REJECTION]
    assert len(rejections) == flood
    assert {e["recipient"] for e in rejections} == {"alpha"}
    for kind in ("submission_rejected", "report_ignored"):
        listed = [e for e in logged if e["event"] == kind]
        counted = [e for e in logged if e["event"] == f"{kind}_not_shown"]
        assert len(listed) + sum(int(e["count"]) for e in counted) == flood, kind
        assert len(listed) <= 20 * 2, "a window of 10 s at most twice in a run of about 4 s"
        assert counted
