"""The `simulator log` commands as plain functions: show, verify, export, import."""

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from simulator.eventlog import (
    Event,
    VerifyReport,
    export_jsonl,
    import_jsonl,
    to_json_line,
    verify,
)
from simulator.logfiles import is_postgres, open_log
from simulator.projections import CaseProjection, TimelineProjection, catch_up, gist
from simulator.records import MESSAGE_PREFIX, is_message_event, message_payload, violation_payloads


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
        table = Table(box=box.SIMPLE, title=f"{location}: {len(events)} of {head} events")
        for column in ("pos", "time", "case", "type", "from → to", "what", "findings"):
            table.add_column(column, overflow="fold")
        for event in events:
            message = message_payload(event) if is_message_event(event.type) else None
            findings = [v["rule_id"] for v in violation_payloads(event)]
            table.add_row(
                str(event.position),
                event.time.strftime("%Y-%m-%d %H:%M"),
                event.subject or "",
                event.type.removeprefix(MESSAGE_PREFIX),
                f"{event.sender or ''} → {event.recipient or ''}" if event.sender else "",
                gist(message) if isinstance(message, dict) else _umpire_gist(event),
                ", ".join(findings),
            )
            shown += 1
        console.print(table)
        if at is not None:
            cases = CaseProjection()
            timeline = TimelineProjection()
            await catch_up(store, cases, timeline, until=until)
            states = Table(box=box.SIMPLE, title=f"cases as of position {cases.position}")
            for column in ("case", "state", "requesting", "requested", "violations"):
                states.add_column(column)
            counts: dict[str, int] = {}
            for finding in cases.findings:
                counts[finding.violation.case_id] = counts.get(finding.violation.case_id, 0) + 1
            for case_id, state in sorted(cases.cases.items()):
                if case is not None and case_id != case:
                    continue
                states.add_row(
                    case_id,
                    state.state.value,
                    state.requesting or state.offered_to or "",
                    state.requested or state.offered_by or "",
                    str(counts.get(case_id, 0)),
                )
            console.print(states)
    return shown


def _umpire_gist(event: Event) -> str:
    data = event.data
    if "reason" in data:
        return str(data["reason"])[:90]
    if "violations" in data:
        return "; ".join(v["rule_id"] for v in data["violations"] or ())
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
