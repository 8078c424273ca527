"""Tamper evidence on SQLite logs: verify() catches each kind of tampering and names where."""

import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.eventlog import (
    CHECKPOINT_DOMAIN,
    CorruptLogError,
    SqliteEventStore,
    canonical_bytes,
    load_or_create_signing_key,
    verify,
)
from simulator.eventlog.checkpoints import Checkpoint, SignedCheckpoint, sign_checkpoint
from simulator.eventlog.envelope import seal
from simulator.eventlog.sqlite import INSERT_SQL

from .helpers import now, proposal, proposals


@pytest.fixture
async def log(tmp_path: Path) -> Path:
    """A closed log of 20 events over 3 cases, checkpointed every 5 events (and on closing)."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now, checkpoint_every=5, checkpoint_seconds=0) as store:
        for start in range(0, 20, 5):
            await store.append(proposals(f"e{start}", 5))
    return path


def execute(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def stored_hash(path: Path, position: int) -> str:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT hash FROM events WHERE position = ?", (position,)).fetchone()
    finally:
        conn.close()
    return str(row[0])


def flip_byte_after(path: Path, marker: bytes) -> None:
    """Change the byte after the marker in event e5-0002 (position 8), in the file itself."""
    data = path.read_bytes()
    offset = data.index(marker + b"event e5-0002") + len(marker)
    path.write_bytes(data[:offset] + b"E" + data[offset + 1 :])


def append_checkpoint_line(path: Path, line: str) -> None:
    with (path.parent / f"{path.name}.checkpoints").open("a", encoding="utf-8") as file:
        file.write(line + "\n")


async def test_an_untouched_log_verifies(log: Path) -> None:
    """The fixture's log passes every check, including its six checkpoints, and closed cleanly."""
    report = await verify(log)

    assert report.ok, report.problem
    assert (report.checked, report.checkpoints_checked) == (20, 6)
    assert (report.vouched_until, report.closed) == (20, True)


async def test_one_changed_byte_in_the_file_names_its_position(log: Path) -> None:
    """Flipping one byte of an event's data inside the database file is caught at that event."""
    flip_byte_after(log, b'"note":"')

    report = await verify(log)

    assert not report.ok
    assert report.first_bad_position == 8
    assert report.problem is not None
    assert "position 8" in report.problem


async def test_a_changed_event_is_refused_when_read(log: Path) -> None:
    """Reading a tampered event raises CorruptLogError naming its position, before any upgrade."""
    execute(
        log, "UPDATE events SET body = replace(body, 'event e5-0002', 'event X') WHERE position = 8"
    )

    async with SqliteEventStore(log, read_only=True) as store:
        with pytest.raises(CorruptLogError) as caught:
            _ = [event async for event in store.read()]

    assert caught.value.position == 8


async def test_a_deleted_row_names_the_missing_position(log: Path) -> None:
    """Deleting an event from the middle leaves a hole that verify names."""
    execute(log, "DELETE FROM events WHERE position = 12")

    report = await verify(log)

    assert report.first_bad_position == 12
    assert report.problem is not None
    assert "position 12 is missing" in report.problem


async def test_an_inserted_row_is_caught_where_the_log_no_longer_fits(log: Path) -> None:
    """A well-forged event slipped in at 8 (the rest moved up) breaks the event that follows it."""
    conn = sqlite3.connect(log, isolation_level=None)
    try:
        conn.execute("UPDATE events SET position = -position WHERE position >= 8")
        conn.execute("UPDATE events SET position = 1 - position WHERE position < 0")
        previous = conn.execute("SELECT hash FROM events WHERE position = 7").fetchone()[0]
        digest, body = seal(proposal("forged", subject=None), 8, 0, previous)
        conn.execute(INSERT_SQL, (8, "forged", None, 0, "coop.written_request", digest, body))
    finally:
        conn.close()

    report = await verify(log)

    assert report.first_bad_position == 9
    assert report.problem is not None
    assert "position 9" in report.problem


async def test_two_reordered_rows_name_the_first_of_them(log: Path) -> None:
    """Swapping the positions of events 5 and 6 is caught at position 5."""
    execute(
        log,
        "UPDATE events SET position = -5 WHERE position = 5",
        "UPDATE events SET position = 5 WHERE position = 6",
        "UPDATE events SET position = 6 WHERE position = -5",
    )

    report = await verify(log)

    assert report.first_bad_position == 5


async def test_a_cut_tail_is_caught_against_the_last_checkpoint(log: Path) -> None:
    """Deleting the last rows leaves a perfect chain, but not the one the last checkpoint signed."""
    execute(log, "DELETE FROM events WHERE position > 17")

    report = await verify(log)

    assert report.first_bad_position == 18
    assert report.problem is not None
    assert "vouches for position 20" in report.problem


async def test_a_rolled_back_copy_of_the_file_is_caught(log: Path, tmp_path: Path) -> None:
    """Putting back an older copy of the log file is caught against the newer checkpoint."""
    older = tmp_path / "older.db"
    shutil.copy(log, older)
    async with SqliteEventStore(log, now=now) as store:
        await store.append(proposals("later", 5))
    shutil.copy(older, log)

    report = await verify(log)

    assert report.first_bad_position == 21
    assert report.problem is not None
    assert "rolled back" in report.problem


async def test_a_rolled_back_copy_that_grew_a_new_history_is_caught(
    log: Path, tmp_path: Path
) -> None:
    """An old copy continued elsewhere to the same length differs where the checkpoint signed."""
    elsewhere = tmp_path / "elsewhere" / "log.db"
    elsewhere.parent.mkdir()
    shutil.copy(log, elsewhere)
    shutil.copy(f"{log}.checkpoints", f"{elsewhere}.checkpoints")
    async with SqliteEventStore(log, now=now) as store:
        await store.append(proposals("real", 5))
    async with SqliteEventStore(elsewhere, now=now) as store:
        await store.append(proposals("other", 5))
    shutil.copy(elsewhere, log)

    report = await verify(log)

    assert report.first_bad_position == 21
    assert report.segment == (21, 25)
    assert report.problem is not None
    assert "positions 21–25 were rewritten" in report.problem
    assert "differs from the one signed" in report.problem


async def test_a_checkpoint_signed_by_another_key_is_refused(log: Path) -> None:
    """A checkpoint line claiming the log's key but signed by another key is refused as forged."""
    key = load_or_create_signing_key()
    async with SqliteEventStore(log, read_only=True) as store:
        log_id = store.log_id
    forged = sign_checkpoint(
        Checkpoint(log_id, 20, stored_hash(log, 20), "2026-11-22T10:00:00.000000Z"),
        Ed25519PrivateKey.generate(),
    )
    claimed = SignedCheckpoint(
        forged.checkpoint, key.public_key().public_bytes_raw().hex(), forged.signature
    )
    append_checkpoint_line(log, claimed.to_line())

    report = await verify(log)

    assert not report.ok
    assert report.problem is not None
    assert "forged" in report.problem
    assert report.first_bad_position == 20


async def test_a_signature_made_for_another_purpose_is_not_a_checkpoint(log: Path) -> None:
    """The log's own key signing the same record without the checkpoint domain does not verify."""
    key = load_or_create_signing_key()
    async with SqliteEventStore(log, read_only=True) as store:
        log_id = store.log_id
    checkpoint = Checkpoint(log_id, 20, stored_hash(log, 20), "2026-11-22T10:00:00.000000Z")
    record = {"log": log_id, "position": 20, "hash": checkpoint.hash, "time": checkpoint.time}
    undomained = key.sign(canonical_bytes(record)).hex()
    public = key.public_key().public_bytes_raw().hex()
    append_checkpoint_line(log, SignedCheckpoint(checkpoint, public, undomained).to_line())

    report = await verify(log)

    assert checkpoint.payload().startswith(CHECKPOINT_DOMAIN)
    assert not report.ok
    assert report.problem is not None
    assert "does not verify as a checkpoint" in report.problem


async def test_a_checkpoint_of_another_log_is_refused(log: Path) -> None:
    """A genuine signature over another log's id does not vouch for this log."""
    key = load_or_create_signing_key()
    foreign = sign_checkpoint(
        Checkpoint("another-log", 20, stored_hash(log, 20), "2026-11-22T10:00:00.000000Z"), key
    )
    append_checkpoint_line(log, foreign.to_line())

    report = await verify(log)

    assert report.problem is not None
    assert "not this log" in report.problem


async def test_a_missing_checkpoint_file_is_caught(log: Path) -> None:
    """A log with events whose checkpoint side file is gone fails verification."""
    (log.parent / "log.db.checkpoints").unlink()

    report = await verify(log)

    assert not report.ok
    assert report.problem is not None
    assert "no signed checkpoints" in report.problem


async def test_a_pinned_key_other_than_the_logs_is_refused(log: Path) -> None:
    """verify(public_key=...) refuses a log whose metadata names another checkpoint key."""
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()

    report = await verify(log, public_key=stranger)

    assert report.problem is not None
    assert "metadata was replaced" in report.problem


async def test_a_column_edited_apart_from_its_event_is_named_with_both_values(log: Path) -> None:
    """A row's type column changed by hand (its stored event left alone): verify and a reader
    name the column, what the row says and what the event says.

    Before: "the row's type disagree with its stored event (the stored event says
    position 8)", the position given as if it were what disagreed.
    """
    execute(log, "UPDATE events SET type = 'coop.msg.refusal' WHERE position = 8")

    report = await verify(log)
    with pytest.raises(CorruptLogError) as caught:
        async with SqliteEventStore(log, read_only=True) as store:
            _ = [event async for event in store.read()]

    said = (
        "the row's type disagrees with its stored event (type: the row says "
        "'coop.msg.refusal', the event 'coop.written_request')"
    )
    assert report.first_bad_position == 8
    assert report.problem is not None
    assert said in report.problem
    assert "says position" not in report.problem
    assert said in str(caught.value)
