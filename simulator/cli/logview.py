"""The `simulator log` commands as plain functions: show, verify, export, import, key."""

import asyncio
import json
import sys
import tempfile
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

from simulator.errors import InputError, SimulatorError
from simulator.eventlog import (
    Event,
    ImportNote,
    LogError,
    SignedCheckpoint,
    VerifyReport,
    default_key_path,
    export_checkpoints,
    export_jsonl,
    from_json_line,
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
from simulator.eventlog.checkpoints import last_made, metadata_changes
from simulator.eventlog.jsonl import check_lines, split_chains
from simulator.eventlog.merged import MergedLog
from simulator.eventlog.store import IMPORT_METADATA, RESERVED_METADATA_PREFIX
from simulator.lineage import read_lineage
from simulator.logfiles import (
    is_postgres,
    made_or_nothing,
    open_log,
    partition_location,
    partition_locations,
    reading,
)
from simulator.projections import (
    CaseProjection,
    TimelineProjection,
    catch_up,
    controller_gist,
    gist,
)
from simulator.protocol.ids import partition_of
from simulator.records import (
    CONTROLLER_RECORDS,
    EXERCISE_STARTED,
    MESSAGE_PREFIX,
    NOTE,
    is_message_event,
    message_payload,
    violation_payloads,
)
from simulator.terminal import visible
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
        # A participant's words: never Rich markup (`[/x]` had stopped `log show` with a
        # MarkupError), nor codes for the terminal (ESC had set its title, cleared it).
        what = Text(visible(_what(event)))
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
        told = Text.assemble(what, "\n⚠ " + ", ".join(findings) if findings else "")
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


async def log_head(location: str) -> int:
    """How many events the log holds (every partition's, for a partitioned run)."""
    async with reading(location) as store:
        return await store.head()


def verified_everywhere(location: str) -> list[VerifyReport] | str:
    """Each log of `location` (each partition's, for a partitioned run) verified; or why not.

    Run in a process of its own beside the report (`simulator report`), so the check
    costs no wall time on a machine with a core to spare: the error comes back as text,
    since the store's errors do not all survive pickling.
    """

    async def every() -> list[VerifyReport]:
        parts = await verify_partitions(location)
        return [r for _, r in parts] if parts is not None else [await verify_log(location)]

    try:
        return asyncio.run(every())
    except (LogError, SimulatorError) as exc:
        return str(exc)


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


def metadata_beside(path: Path) -> Path:
    """``FILE.metadata``: where an export puts the run's metadata and an import looks for it."""
    return path.with_name(path.name + ".metadata")


async def export_log(
    location: str,
    out: TextIO | None = None,
    *,
    checkpoints: TextIO | None = None,
    metadata: TextIO | None = None,
) -> int:
    """Write the events as JSON lines (and the log's signed checkpoints to ``checkpoints``).

    The checkpoints are read first: events appended meanwhile by a running
    writer are then in the export but not vouched for, never the reverse.
    ``metadata`` gets what the log records of its run (scenario, seed, clock,
    lineage: what `replay --check`, `fork`, `resume` and `report` read), as
    one JSON object; a partitioned run's export carries none (`{}`).
    """
    partitions = await partition_locations(location)
    if partitions:
        if metadata is not None:
            metadata.write("{}\n")
        return await _export_partitions(partitions, out or sys.stdout, checkpoints)
    async with open_log(location, read_only=True) as store:
        if checkpoints is not None:
            await export_checkpoints(store, checkpoints)
        if metadata is not None:
            # The store's own keys (its id, its key, how it was imported) are the new log's.
            run = {
                key: value
                for key, value in (await store.metadata()).items()
                if not key.startswith(RESERVED_METADATA_PREFIX)
            }
            metadata.write(json.dumps(run, sort_keys=True, ensure_ascii=False) + "\n")
        return await export_jsonl(store, out or sys.stdout)


def _source_metadata(source: Path) -> dict[str, str]:
    """The run's metadata exported beside `source` (SOURCE.metadata); {} for an older export."""
    path = metadata_beside(source)
    if not path.is_file():
        return {}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a log's metadata (one JSON object): {exc}") from None
    if not isinstance(found, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and not k.startswith(RESERVED_METADATA_PREFIX)
        for k, v in found.items()
    ):
        raise InputError(f"{path}: not a log's metadata (a JSON object of strings)")
    return found


def _hold_metadata(
    path: Path, carried: dict[str, str], checkpoints: Sequence[SignedCheckpoint]
) -> None:
    """Refuse exported metadata that differs from what the source's last checkpoint signed.

    Only the run's keys are exported (not the store's own), so only those are
    compared. Checkpoints of an older version sign no metadata, and an older
    export has no metadata file: nothing to hold then.
    """
    if not path.is_file():
        return
    signed = [c for c in checkpoints if c.signed_by_its_key()]
    index = last_made([c.checkpoint for c in signed])
    if index is None:
        return
    last = signed[index]
    meta = last.checkpoint.meta
    if meta is None:
        return
    run = {k: v for k, v in meta.items() if not k.startswith(RESERVED_METADATA_PREFIX)}
    changed = metadata_changes(run, carried)
    if changed:
        named = ", ".join(repr(key) for key in changed)
        raise InputError(
            f"{path}: {named} {'differs' if len(changed) == 1 else 'differ'} from what the "
            f"source's last checkpoint (position {last.checkpoint.position}, key "
            f"{key_fingerprint(last.key)}) signed: "
            "the metadata was edited after it was checkpointed (or exported from a log still "
            "being written: export it again once its run has ended); nothing was imported"
        )


async def _export_partitions(
    partitions: Sequence[str], out: TextIO, checkpoints: TextIO | None
) -> int:
    """A partitioned run's logs as one file, merged: time, then partition, then position.

    Each line is exactly as its partition's log stores it (its own position and
    hash chain), so the file holds every partition's chain interleaved; `log
    import` takes them apart again (`split_chains`) and checks each. The
    checkpoints file holds every partition's checkpoints.
    """
    async with MergedLog([open_log(p, read_only=True) for p in partitions], "") as merged:
        if checkpoints is not None:
            for store in merged.partitions:
                await export_checkpoints(store, checkpoints)
        count = 0
        async for _, event in merged.stored():
            out.write(to_json_line(event) + "\n")
            count += 1
        return count


def _source_checkpoints(source: Path, checkpoints: Path | None) -> list[SignedCheckpoint]:
    """The checkpoints an import holds `source` to: `checkpoints`, else SOURCE.checkpoints."""
    if checkpoints is None and checkpoints_beside(source).is_file():
        checkpoints = checkpoints_beside(source)
    if checkpoints is None:
        return []
    with checkpoints.open(encoding="utf-8") as handle:
        return read_checkpoints(handle)


async def import_signed(
    source: Path,
    location: str,
    *,
    now: Callable[[], datetime],
    checkpoints: Path | None = None,
    recorded_as: str | None = None,
    metadata: dict[str, str] | None = None,
) -> ImportNote:
    """Import JSON lines into a new log, held to the source's checkpoints; what was re-signed.

    The caller makes sure the log does not exist yet. Checkpoints come from
    ``checkpoints``, else from ``SOURCE.checkpoints`` when there is one.
    """
    kept = _source_checkpoints(source, checkpoints)
    with source.open(encoding="utf-8") as handle:
        # import_jsonl checks every line before it writes any; a refused file or a failure
        # after that leaves nothing made here (the retry finds no log there).
        async with (
            made_or_nothing(location),
            open_log(location, create=True, now=now) as store,
        ):
            first = await store.head() + 1
            for key, value in (metadata or {}).items():
                await store.set_metadata(key, value)
            await import_jsonl(handle, store, checkpoints=kept)
            return await record_provenance(
                store,
                source=recorded_as or str(source),
                first_position=first,
                checkpoints=kept,
                now=now(),
            )


async def import_log(source: Path, location: str, *, now: Callable[[], datetime]) -> int:
    """Import JSON lines into a new log; the number of events imported."""
    notes = await import_logs(source, location, now=now)
    return sum(note.last_position - note.first_position + 1 for _, note in notes)


async def import_logs(
    source: Path,
    location: str,
    *,
    now: Callable[[], datetime],
    checkpoints: Path | None = None,
) -> list[tuple[str, ImportNote]]:
    """Import a log's export, or a partitioned run's (one chain a partition), into new logs.

    One chain: `import_signed` into `location`. Several: a partitioned run's
    merged export, each chain imported into its partition's log of
    `location` (a postgresql:// URL, each partition the schema `NAME_pN`),
    numbered by the cases it holds (`partition_of`), each held to its own
    checkpoints. Every chain is checked before anything is written.
    """
    try:
        with source.open(encoding="utf-8") as handle:
            chains = split_chains(handle)
    except UnicodeDecodeError:
        raise InputError(
            f"{source}: not a log export (JSON lines of UTF-8 text): {_not_utf8(source)}"
        ) from None
    if not chains or not any(chains):
        raise InputError(f"{source}: holds no events; nothing was imported")
    if len(chains) <= 1:
        # The run's metadata exported beside it, so the tools find its scenario again.
        carried = _source_metadata(source)
        _hold_metadata(metadata_beside(source), carried, _source_checkpoints(source, checkpoints))
        note = await import_signed(
            source, location, now=now, checkpoints=checkpoints, metadata=carried
        )
        return [(location, note)]
    if not is_postgres(location):
        raise InputError(
            f"{source} holds {len(chains)} logs, a partitioned run's: import it into "
            "postgresql://…?schema=NAME, where each partition becomes the schema NAME_pN"
        )
    numbers = _partition_numbers(source, chains)
    kept = _source_checkpoints(source, checkpoints)
    if await partition_locations(location):
        raise InputError(f"{location}: already holds a partitioned run; import writes new logs")
    owned: list[list[SignedCheckpoint]] = []
    for chain in chains:
        hashes = {from_json_line(line).hash for line in chain}
        owned.append([c for c in kept if c.checkpoint.hash in hashes])
        # Every chain checked before any is written: a bad one leaves no partition behind.
        check_lines(chain, owned[-1])
    notes = []
    with tempfile.TemporaryDirectory(prefix="simulator-import-") as directory:
        for chain, number, own in zip(chains, numbers, owned, strict=True):
            target = partition_location(location, number)
            part = Path(directory) / f"p{number}.jsonl"
            part.write_text("".join(f"{line}\n" for line in chain), encoding="utf-8")
            vouched = Path(directory) / f"p{number}.checkpoints"
            vouched.write_text("".join(f"{c.to_line()}\n" for c in own), encoding="utf-8")
            note = await import_signed(
                part, target, now=now, checkpoints=vouched, recorded_as=f"{source} ({number})"
            )
            notes.append((target, note))
    return sorted(notes)


def _not_utf8(path: Path) -> str:
    """Where a file stops being UTF-8: its line and byte (read again whole, on this error only)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"line {line} (byte {exc.start}) is not UTF-8"
    return "it is not UTF-8"


def _partition_numbers(source: Path, chains: Sequence[Sequence[str]]) -> list[int]:
    """Which partition each chain is: the one its cases hash to among len(chains)."""
    count = len(chains)
    numbers: list[int | None] = []
    for chain in chains:
        cases = {e.subject for e in map(from_json_line, chain) if e.subject is not None}
        found = {partition_of(case, count) for case in cases}
        if len(found) > 1:
            raise InputError(
                f"{source}: a chain holds cases of partitions {sorted(found)} of {count}: "
                "not a partitioned run's export (or one of its partitions is missing)"
            )
        numbers.append(found.pop() if found else None)
    # A chain of no case (the run's own events only) takes the number left over.
    left = sorted(set(range(count)) - {n for n in numbers if n is not None})
    assigned = [n if n is not None else left.pop(0) if left else -1 for n in numbers]
    if sorted(assigned) != list(range(count)):
        raise InputError(
            f"{source}: its {count} chains are not {count} partitions' logs "
            "(two hold cases of one partition)"
        )
    return assigned


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
            "metadata_vouched": report.metadata_vouched,
            "metadata_changed": list(report.metadata_changed),
            "notes": list(report.notes),
        }
    )
