"""JSON Lines export and import: exact round trips, and broken files refused by line."""

import io
import json
from pathlib import Path

import pytest

from simulator.eventlog import (
    JsonlImportError,
    SqliteEventStore,
    export_jsonl,
    from_json_line,
    import_jsonl,
    to_json_line,
    verify,
)
from simulator.eventlog.envelope import compute_hash

from .helpers import now, proposal, proposals


async def exported(path: Path) -> str:
    out = io.StringIO()
    async with SqliteEventStore(path, read_only=True) as store:
        await export_jsonl(store, out)
    return out.getvalue()


@pytest.fixture
async def source(tmp_path: Path) -> Path:
    """A log of 30 events, some without a case and some with non-ASCII data."""
    path = tmp_path / "source.db"
    async with SqliteEventStore(path, now=now) as store:
        await store.append(proposals("e", 25))
        await store.append([proposal(f"n{i}", subject=None) for i in range(3)])
        await store.append([proposal("u1", data={"text": "Grüße, Москва"}), proposal("u2")])
    return path


async def test_export_import_export_gives_identical_bytes(source: Path, tmp_path: Path) -> None:
    """Exporting, importing into a new log and exporting again reproduces the file exactly."""
    first = await exported(source)
    target = tmp_path / "target.db"

    async with SqliteEventStore(target, now=now) as store:
        count = await import_jsonl(io.StringIO(first), store)
    second = await exported(target)

    assert count == 30
    assert second == first
    assert (await verify(target)).ok


async def test_an_export_is_one_cloudevent_per_line(source: Path) -> None:
    """Every line is a structured-mode CloudEvent whose hash recomputes."""
    lines = (await exported(source)).splitlines()

    events = [from_json_line(line) for line in lines]

    assert len(lines) == 30
    assert all(json.loads(line)["specversion"] == "1.0" for line in lines)
    assert all(compute_hash(event) == event.hash for event in events)
    assert [to_json_line(event) for event in events] == lines


async def test_a_broken_chain_is_refused_naming_the_line(source: Path, tmp_path: Path) -> None:
    """A line that hashes correctly but does not link to the line before is refused, by number."""
    lines = (await exported(source)).splitlines()
    relinked = from_json_line(lines[6]).model_copy(update={"prevhash": "f" * 64})
    relinked = relinked.model_copy(update={"hash": compute_hash(relinked)})
    lines[6] = to_json_line(relinked)

    async with SqliteEventStore(tmp_path / "target.db", now=now) as store:
        with pytest.raises(JsonlImportError, match="broken chain") as caught:
            await import_jsonl(io.StringIO("\n".join(lines) + "\n"), store)
        head = await store.head()

    assert caught.value.line == 7
    assert head == 0


async def test_a_changed_line_is_refused_naming_it(source: Path, tmp_path: Path) -> None:
    """A line whose content no longer matches its hash is refused, by number, before any write."""
    lines = (await exported(source)).splitlines()
    lines[19] = lines[19].replace("event e-0019", "event e-9999")

    async with SqliteEventStore(tmp_path / "target.db", now=now) as store:
        with pytest.raises(JsonlImportError, match="does not match its hash") as caught:
            await import_jsonl(io.StringIO("\n".join(lines) + "\n"), store)
        head = await store.head()

    assert caught.value.line == 20
    assert head == 0


async def test_a_missing_line_is_refused_naming_the_next(source: Path, tmp_path: Path) -> None:
    """Dropping a line leaves a gap in positions, named at the line after it."""
    lines = (await exported(source)).splitlines()
    del lines[3]

    async with SqliteEventStore(tmp_path / "target.db", now=now) as store:
        with pytest.raises(JsonlImportError, match="does not follow") as caught:
            await import_jsonl(io.StringIO("\n".join(lines) + "\n"), store)

    assert caught.value.line == 4


async def test_garbage_and_empty_lines_are_refused_by_number(tmp_path: Path) -> None:
    """A line that is not an event, or is empty, is named."""
    async with SqliteEventStore(tmp_path / "target.db", now=now) as store:
        with pytest.raises(JsonlImportError) as garbage:
            await import_jsonl(io.StringIO('{"not": "an event"}\n'), store)
        with pytest.raises(JsonlImportError, match="empty line") as empty:
            await import_jsonl(io.StringIO("\n"), store)

    assert (garbage.value.line, empty.value.line) == (1, 1)


async def test_a_file_that_does_not_continue_the_target_is_refused(
    source: Path, tmp_path: Path
) -> None:
    """Importing a log from position 1 into a log that already has events writes nothing."""
    text = await exported(source)
    async with SqliteEventStore(tmp_path / "target.db", now=now) as store:
        await store.append(proposals("own", 2))
        with pytest.raises(JsonlImportError, match="head is 2"):
            await import_jsonl(io.StringIO(text), store)
        head = await store.head()

    assert head == 2
