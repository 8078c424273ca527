"""The `simulator log` commands as plain functions: show, verify, export, import, key."""

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TextIO

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from simulator.errors import InputError
from simulator.eventlog import (
    Event,
    ImportNote,
    SignedCheckpoint,
    VerifyReport,
    default_key_path,
    export_checkpoints,
    export_jsonl,
    import_jsonl,
    key_fingerprint,
    load_or_create_signing_key,
    public_key_hex,
    public_key_pem,
    read_checkpoints,
    record_provenance,
    to_json_line,
    verify,
)
from simulator.eventlog.store import IMPORT_METADATA
from simulator.lineage import read_lineage
from simulator.logfiles import is_postgres, open_log, partition_locations, reading
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
    # A partitioned run's partitions, merged as one log in time order.
    async with reading(location) as store:
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
        provenance = await store.get_metadata(IMPORT_METADATA)
        if provenance is not None:
            # Said before the events: this machine's key vouches for them now.
            console.print(f"[yellow]{escape(_describe_import(provenance))}[/]")
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


def _describe_import(recorded: str) -> str:
    try:
        return ImportNote.from_json(recorded).describe()
    except ValueError as exc:
        return f"imported, but its import record is unreadable ({exc}); run log verify"


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


async def verify_partitions(
    location: str, *, pinned: Sequence[str] = ()
) -> list[tuple[str, VerifyReport]] | None:
    """Each partition's log of the partitioned run at `location`, verified; None for another log.

    Each partition has its own chain and checkpoints: each is checked on its own.
    """
    partitions = await partition_locations(location)
    if not partitions:
        return None
    return [(part, await verify_log(part, pinned=pinned)) for part in partitions]


async def verify_log(
    location: str, *, pinned: Sequence[str] = (), witness: str | None = None
) -> VerifyReport:
    """Verify a log, with the checkpoint keys pinned and a witness if given."""
    if is_postgres(location):
        async with open_log(location, read_only=True) as store:
            return await verify(store, pinned=pinned, witness=witness)
    return await verify(Path(location), pinned=pinned, witness=witness)


def checkpoints_beside(path: Path) -> Path:
    """``FILE.checkpoints``: where an export puts its checkpoints and an import looks for them."""
    return path.with_name(path.name + ".checkpoints")


async def export_log(
    location: str, out: TextIO | None = None, *, checkpoints: TextIO | None = None
) -> int:
    """Write the events as JSON lines (and the log's signed checkpoints to ``checkpoints``).

    The checkpoints are read first: events appended meanwhile by a running
    writer are then in the export but not vouched for, never the reverse.
    """
    partitions = await partition_locations(location)
    if partitions:
        # Each partition's lines carry its own chain: one file of all of them would be
        # a log no import could check. Exported one by one, each imports and verifies.
        raise InputError(
            f"{location} is a run of {len(partitions)} partitions, each a log of its own: "
            f"export them one by one ({', '.join(partitions)})"
        )
    async with open_log(location, read_only=True) as store:
        if checkpoints is not None:
            await export_checkpoints(store, checkpoints)
        return await export_jsonl(store, out or sys.stdout)


async def import_signed(
    source: Path,
    location: str,
    *,
    now: Callable[[], datetime],
    checkpoints: Path | None = None,
) -> ImportNote:
    """Import JSON lines into a new log, held to the source's checkpoints; what was re-signed.

    The caller makes sure the log does not exist yet. Checkpoints come from
    ``checkpoints``, else from ``SOURCE.checkpoints`` when there is one.
    """
    if checkpoints is None and checkpoints_beside(source).is_file():
        checkpoints = checkpoints_beside(source)
    kept: list[SignedCheckpoint] = []
    if checkpoints is not None:
        with checkpoints.open(encoding="utf-8") as handle:
            kept = read_checkpoints(handle)
    with source.open(encoding="utf-8") as handle:
        async with open_log(location, create=True, now=now) as store:
            first = await store.head() + 1
            await import_jsonl(handle, store, checkpoints=kept)
            return await record_provenance(
                store, source=str(source), first_position=first, checkpoints=kept, now=now()
            )


async def import_log(source: Path, location: str, *, now: Callable[[], datetime]) -> int:
    """Import JSON lines into a new log; the number of events imported."""
    note = await import_signed(source, location, now=now)
    return note.last_position - note.first_position + 1


def machine_key(path: Path | None = None) -> tuple[str, bytes, Path]:
    """This machine's checkpoint key (created if need be): fingerprint, public PEM, file."""
    where = path or default_key_path()
    public = public_key_hex(load_or_create_signing_key(where))
    return key_fingerprint(public), public_key_pem(public), where


def report_json(report: VerifyReport) -> str:
    return json.dumps(
        {
            "ok": report.ok,
            "checked": report.checked,
            "first_bad_position": report.first_bad_position,
            "segment": list(report.segment) if report.segment else None,
            "problem": report.problem,
            "checkpoints_checked": report.checkpoints_checked,
            "head": report.head,
            "pinned": report.pinned,
            "keys": [asdict(use) for use in report.keys],
            "vouched_until": report.vouched_until,
            "closed": report.closed,
            "witness": report.witness,
            "witness_checkpoints": report.witness_checkpoints,
            "witness_until": report.witness_until,
            "imported": report.imported.model_dump() if report.imported else None,
            "notes": list(report.notes),
        }
    )
