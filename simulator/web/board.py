"""What the control view shows, folded from committed events with the project's projections.

The board is fed the umpire's commits (a live run) or a log's events at
their pace (a replay), in position order, and keeps: every case's state
(`MilestonesProjection`), the timeline (`TimelineProjection`), the
violations with their articles, the controller's notes and actions
(`ControllerProjection`) and which injects have gone out. A fork's lineage
is shown with it. Pages subscribe to `changed` and fetch a snapshot.
"""

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from simulator.eventlog import Event
from simulator.lineage import Lineage
from simulator.projections import ControllerProjection, MilestonesProjection, TimelineProjection
from simulator.protocol.case import CaseState
from simulator.records import EXERCISE_ENDED, NOTE, read_ended, read_note
from simulator.scenario.model import Scenario

TIMELINE_SHOWN = 300
VIOLATIONS_SHOWN = 500
# A load run has thousands of cases; the board counts them all but draws the latest.
CASES_SHOWN = 200


@dataclass(frozen=True, slots=True)
class ClockView:
    time: datetime | None
    paused: bool = False
    speed: float | None = None


class Signal:
    """A broadcast 'something changed', counted, so that no change between two looks is missed."""

    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()

    def fire(self) -> None:
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait_past(self, version: int, seconds: float) -> bool:
        """Return once the version is past `version` (at once if it already is), or time is up."""
        if self.version > version:
            return True
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


@dataclass
class Board:
    scenario: Scenario
    mode: str = "live"  # live | replay
    training: bool = False
    clock: Callable[[], ClockView] = field(default=lambda: ClockView(None))
    cases: MilestonesProjection = field(default_factory=MilestonesProjection)
    timeline: TimelineProjection = field(default_factory=TimelineProjection)
    controller: ControllerProjection = field(default_factory=ControllerProjection)
    notes: list[dict[str, Any]] = field(default_factory=list)
    fired: set[str] = field(default_factory=set)
    ended: str | None = None
    report_url: str | None = None
    report_error: str | None = None
    changed: Signal = field(default_factory=Signal)
    last_time: datetime | None = None
    # Where the run came from, when it is a fork.
    lineage: Lineage | None = None

    def commit(self, events: Sequence[Event]) -> None:
        for event in events:
            if not self.cases.apply(event):
                continue
            self.timeline.apply(event)
            self.controller.apply(event)
            self.last_time = event.time
            if event.source.startswith("inject/"):
                self.fired.add(event.source.removeprefix("inject/"))
            if event.type == NOTE:
                self.notes.append(
                    {
                        "position": event.position,
                        "time": iso(event.time),
                        "text": read_note(event).text,
                    }
                )
            elif event.type == EXERCISE_ENDED:
                self.ended = read_ended(event).reason
        self.changed.fire()

    def finish(self, reason: str) -> None:
        self.ended = self.ended or reason
        self.changed.fire()

    # -- the snapshot the control page draws --------------------------------------

    def snapshot(self) -> dict[str, Any]:
        clock = self.clock()
        projection = self.cases
        by_state = Counter(case.state.value for case in projection.cases.values())
        violations_by_case = Counter(f.violation.case_id for f in projection.findings)
        shown = sorted(projection.cases.values(), key=lambda c: c.updated_at)[-CASES_SHOWN:]
        shown_ids = {case.case_id for case in shown}
        steps: dict[str, list[dict[str, Any]]] = {}
        for entry in self.timeline.entries:
            if entry.case_id not in shown_ids:
                continue
            steps.setdefault(entry.case_id, []).append(
                {
                    "position": entry.position,
                    "time": iso(entry.time),
                    "type": entry.type,
                    "sender": entry.sender,
                    "recipient": entry.recipient,
                    "gist": entry.gist,
                    "rules": list(entry.rule_ids),
                }
            )
        # The controller's notes and actions about a case are rows of its chart too.
        for desk in self.controller.entries:
            if desk.case_id in shown_ids:
                steps.setdefault(desk.case_id, []).append(
                    {
                        "position": desk.position,
                        "time": iso(desk.time),
                        "type": desk.kind,
                        "sender": None,
                        "recipient": None,
                        "gist": desk.text,
                        "rules": [],
                        "desk": True,
                    }
                )
        for rows in steps.values():
            rows.sort(key=lambda row: int(row["position"]))
        start = self.scenario.start
        note_text = {n["position"]: n["text"] for n in self.notes}
        return {
            "exercise": self.scenario.exercise,
            "title": self.scenario.title,
            "mode": self.mode,
            "training": self.training,
            "clock": {
                # A run that ended stays at its end, whatever the clock object says now.
                "time": iso(self.last_time if self.ended else (clock.time or self.last_time)),
                "paused": clock.paused,
                "speed": clock.speed,
            },
            "head": projection.position,
            "ended": self.ended,
            # A replay's report is ready early; like a live run's, it is shown at the end.
            "report": self.report_url if self.ended else None,
            "report_error": self.report_error,
            "states": [
                {"state": s.value, "count": by_state.get(s.value, 0), "terminal": s.terminal}
                for s in CaseState
            ],
            "cases": [
                {
                    "id": case.case_id,
                    "state": case.state.value,
                    "requesting": case.requesting or case.offered_to,
                    "requested": case.requested or case.offered_by,
                    "area": case.area,
                    "messages": case.messages,
                    "violations": violations_by_case.get(case.case_id, 0),
                    "opened": iso(case.opened_at),
                    "updated": iso(case.updated_at),
                }
                for case in sorted(shown, key=lambda c: c.opened_at)
            ],
            "cases_total": len(projection.cases),
            "steps": steps,
            "violations": [
                {
                    "position": f.position,
                    "time": iso(f.time),
                    "rule": f.violation.rule_id,
                    "article": f.violation.article,
                    "severity": f.violation.severity.value,
                    "detail": f.violation.detail,
                    "case": f.violation.case_id,
                    "party": f.violation.party,
                }
                for f in reversed(projection.findings[-VIOLATIONS_SHOWN:])
            ],
            "timeline": [
                {
                    "position": e.position,
                    "time": iso(e.time),
                    "type": e.type,
                    "case": e.case_id,
                    "sender": e.sender,
                    "recipient": e.recipient,
                    "gist": note_text.get(e.position, e.gist),
                    "rules": list(e.rule_ids),
                }
                for e in reversed(self.timeline.entries[-TIMELINE_SHOWN:])
            ],
            "injects": [
                {
                    "id": inject.id,
                    "at": iso(start + inject.at) if inject.at is not None else None,
                    "conditioned": inject.when is not None,
                    "kind": inject.send.type,
                    "case": inject.send.case,
                    "fired": inject.id in self.fired,
                }
                for inject in self.scenario.injects
            ],
            "notes": list(reversed(self.notes)),
            # The controller's notes and actions (pauses, speed, jumps, injects sent by hand).
            "desk": [
                {
                    "position": e.position,
                    "time": iso(e.time),
                    "kind": e.kind,
                    "command": e.command,
                    "text": e.text,
                    "case": e.case_id,
                }
                for e in reversed(self.controller.entries)
            ],
            "lineage": self.lineage.model_dump() if self.lineage else None,
            "lineage_text": f"this run is {self.lineage.sentence()}" if self.lineage else None,
            "parties": [
                {"id": p.id, "name": p.name, "human": p.human} for p in self.scenario.parties
            ],
        }
