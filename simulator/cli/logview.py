"""The `simulator log` commands as plain functions: show, verify, export, import."""

import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from simulator.eventlog import (
    Event,
    VerifyReport,
    export_jsonl,
    import_jsonl,
    to_json_line,
    verify,
)
from simulator.lineage import read_lineage
from simulator.logfiles import is_postgres, open_log
from simulator.projections import (
    CaseProjection,
    TimelineProjection,
    catch_up,
    controller_gist,
    gist,
)
from simulator.records import (
    CONTROLLER_RECORDS,
    EXERCISE_STARTED,
    MESSAGE_PREFIX,
    NOTE,
    is_message_event,
    message_payload,
    violation_payloads,
)
from simulator.wording import prose, state_words


def type_matches(event_type: str, wanted: str) -> bool:
    """`--type refusal` matches `coop.msg.refusal`; a full type matches itself."""
    return event_type == wanted or event_type == MESSAGE_PREFIX + wanted


async def show_log(
    location: str,
    *,
    console: Console,
    case: str | None = None,
    event_type: str | None = None,
    as_json: bool = False,
    at: int | None = None,
) -> int:
    """Print the log's events (filtered), and with `at` every case's state then."""
    shown = 0
    async with open_log(location, read_only=True) as store:
        head = await store.head()
        until = min(at, head) if at is not None else None
        events: list[Event] = []
        async for event in store.read(1, until):
            if case is not None and event.subject != case:
                continue
            if event_type is not None and not type_matches(event.type, event_type):
                continue
            events.append(event)
        if as_json:
            for event in events:
                console.file.write(to_json_line(event) + "\n")
            return len(events)
        table = _events_table(events, console.width)
        table.title = f"{location}: {len(events)} of {head} events"
        lineage = read_lineage(await store.metadata())
        if lineage is not None:
            table.caption = f"this run is {lineage.sentence()}"
        shown = len(events)
        console.print(table)
        if at is not None:
            cases = CaseProjection()
            timeline = TimelineProjection()
            await catch_up(store, cases, timeline, until=until)
            states = Table(box=box.SIMPLE, title=f"cases as of position {cases.position}")
            for column in ("case", "state", "requesting", "requested", "violations"):
                states.add_column(column, overflow="fold")
            counts: dict[str, int] = {}
            for finding in cases.findings:
                counts[finding.violation.case_id] = counts.get(finding.violation.case_id, 0) + 1
            for case_id, state in sorted(cases.cases.items()):
                if case is not None and case_id != case:
                    continue
                states.add_row(
                    case_id,
                    state_words(state.state.value),
                    state.requesting or state.offered_to or "",
                    state.requested or state.offered_by or "",
                    str(counts.get(case_id, 0)),
                )
            console.print(states)
    return shown


# Wide enough for a case and both parties in columns of their own; narrower terminals
# get them under the event's type, so no type, date or time is ever split.
WIDE = 140
_TIME = "%Y-%m-%d %H:%M"


def _events_table(events: Sequence[Event], width: int) -> Table:
    """One row per event; pos, time and type never wrap, the text folds in what is left."""
    wide = width >= WIDE
    table = Table(box=box.SIMPLE, pad_edge=False, expand=False)
    table.add_column("pos", justify="right", no_wrap=True)
    table.add_column("time", no_wrap=True, min_width=len("2026-03-02 11:00"))
    longest = max((len(_type_name(e)) for e in events), default=4)
    table.add_column("type" if wide else "type · case · from → to", min_width=longest)
    if wide:
        table.add_column("case", overflow="fold")
        table.add_column("from → to", overflow="fold")
    table.add_column("what", overflow="fold", ratio=1)
    if wide:
        table.add_column("findings", overflow="fold")
    for event in events:
        findings = [v["rule_id"] for v in violation_payloads(event)]
        parties = f"{event.sender or ''} → {event.recipient or ''}" if event.sender else ""
        what = _what(event)
        kind = Text(_type_name(event), no_wrap=True, overflow="ellipsis")
        if wide:
            table.add_row(
                str(event.position),
                event.time.strftime(_TIME),
                kind,
                event.subject or "",
                parties,
                what,
                ", ".join(findings),
            )
            continue
        under = "\n".join(part for part in (event.subject or "", parties) if part)
        cell = Text.assemble(kind, "\n" + under if under else "")
        told = what + ("\n⚠ " + ", ".join(findings) if findings else "")
        table.add_row(str(event.position), event.time.strftime(_TIME), cell, told)
    return table


def _type_name(event: Event) -> str:
    return event.type.removeprefix(MESSAGE_PREFIX)


def _what(event: Event) -> str:
    """A message's gist; the controller's note or action; the umpire's reason or finding."""
    if is_message_event(event.type):
        return gist(message_payload(event))
    if event.type == NOTE:
        return "note: " + controller_gist(event)
    if event.type in CONTROLLER_RECORDS:
        return controller_gist(event)
    data = event.data
    if "reason" in data:
        return prose(str(data["reason"]))[:90]
    if data.get("violations"):
        return "; ".join(prose(str(v.get("detail", v["rule_id"]))) for v in data["violations"])
    if event.type == EXERCISE_STARTED:
        return f"exercise started: {data.get('scenario') or event.exercise}"
    return ""


async def verify_log(location: str) -> VerifyReport:
    if is_postgres(location):
        async with open_log(location, read_only=True) as store:
            return await verify(store)
    return await verify(Path(location))


async def export_log(location: str, out: TextIO | None = None) -> int:
    async with open_log(location, read_only=True) as store:
        return await export_jsonl(store, out or sys.stdout)


async def import_log(source: Path, location: str, *, now: Callable[[], datetime]) -> int:
    """Import JSON lines into a new log (the caller makes sure it does not exist yet)."""
    with source.open(encoding="utf-8") as handle:
        async with open_log(location, create=True, now=now) as store:
            return await import_jsonl(handle, store)


def report_json(report: VerifyReport) -> str:
    return json.dumps(
        {
            "ok": report.ok,
            "checked": report.checked,
            "first_bad_position": report.first_bad_position,
            "problem": report.problem,
            "checkpoints_checked": report.checkpoints_checked,
        }
    )
