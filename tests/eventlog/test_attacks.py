"""A hostile tester's attacks (issue 15), on SQLite and PostgreSQL: each caught by a pinned verify.

The log under attack has 20 events, a checkpoint every 5 and a closing
one, and a witness: a file in another directory, or a PostgreSQL table the
writing role may only INSERT into. The attacker (tests/eventlog/attacker.py)
has what the writer has, and uses plain SQL.
"""

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import errors, sql

from simulator.eventlog import (
    CorruptLogError,
    InspectableStore,
    PostgresEventStore,
    SqliteEventStore,
    VerifyReport,
    key_fingerprint,
    load_or_create_signing_key,
    public_key_hex,
    verify,
)
from simulator.eventlog.checkpoints import SignedCheckpoint, sign_checkpoint

from .attacker import Attacker, PostgresAttacker, SqliteAttacker
from .conftest import PgWriter
from .helpers import now, proposals


@dataclass
class Target:
    """A log under attack: how to write it, read it, and where its witness is."""

    backend: str
    attacker: Attacker
    witness: str
    """Where verify reads the witness."""
    writer_witness: str
    """Where the writer writes it."""
    location: dict[str, Any]

    def writer(self, **options: Any) -> InspectableStore:
        defaults: dict[str, Any] = {
            "now": now,
            "checkpoint_seconds": 0,
            "witness": self.writer_witness,
        }
        options = defaults | options
        if self.backend == "sqlite":
            return SqliteEventStore(self.location["path"], **options)
        return PostgresEventStore(
            self.location["writer_url"], schema=self.location["schema"], **options
        )

    async def verify(self, *, pinned: bool = True, witness: bool = False) -> VerifyReport:
        keys = [public_key_hex(load_or_create_signing_key())] if pinned else []
        seen = self.witness if witness else None
        if self.backend == "sqlite":
            return await verify(self.location["path"], pinned=keys, witness=seen)
        async with PostgresEventStore(
            self.location["admin_url"], schema=self.location["schema"], read_only=True
        ) as store:
            return await verify(store, pinned=keys, witness=seen)


@pytest.fixture
def target(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if backend == "sqlite":
        (tmp_path / "witness").mkdir()
        path = tmp_path / "log.db"
        witness = str(tmp_path / "witness")
        yield Target(backend, SqliteAttacker(path), witness, witness, {"path": path})
        return
    pg_url: str = request.getfixturevalue("pg_url")
    schema: str = request.getfixturevalue("pg_schema")
    writer: PgWriter = request.getfixturevalue("pg_writer")
    yield Target(
        backend,
        PostgresAttacker(writer.url, schema),
        writer.audit_witness,
        writer.witness,
        {"writer_url": writer.url, "admin_url": pg_url, "schema": schema},
    )


async def write(target: Target, count: int = 20, prefix: str = "e") -> None:
    """Append ``count`` events in batches of 5, checkpointed every 5, and close."""
    async with target.writer(checkpoint_every=5) as store:
        for start in range(0, count, 5):
            await store.append(proposals(f"{prefix}{start}", 5))


def renamed(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "note": "nothing happened here"}


async def test_the_untouched_log_verifies_against_its_key_and_witness(target: Target) -> None:
    """Before any attack: sound, closed cleanly, and the witness holds every checkpoint."""
    await write(target)

    report = await target.verify(witness=True)

    assert report.ok, report.problem
    assert (report.closed, report.vouched_until, report.witness_until) == (True, 20, 20)
    assert report.witness_checkpoints == report.checkpoints_checked // 2


async def test_a_rewritten_rechained_resigned_log_with_its_key_replaced(target: Target) -> None:
    """Trusting the log's own key the forgery passes, saying whose key it trusted; pinned, it fails.

    Pinned, the log alone names the whole log unvouched; with the witness
    the rewrite is located between the checkpoints at 5 and 10.
    """
    await write(target)
    forger = Ed25519PrivateKey.generate()
    target.attacker.rechain(8, renamed)
    target.attacker.resign(forger, every=5)

    trusting = await target.verify(pinned=False)
    pinned = await target.verify()
    witnessed = await target.verify(witness=True)

    assert trusting.ok
    assert f"trusted checkpoint key {key_fingerprint(public_key_hex(forger))}" in trusting.notes[0]
    assert "read from the log itself and not pinned" in trusting.notes[0]
    assert not pinned.ok
    assert pinned.segment == (1, 20)
    assert pinned.problem is not None
    assert "no checkpoint of the log is signed by a pinned key" in pinned.problem
    assert "positions 1–20" in pinned.problem
    assert not witnessed.ok
    assert (witnessed.first_bad_position, witnessed.segment) == (6, (6, 10))
    assert witnessed.problem is not None
    assert "positions 6–10 were rewritten" in witnessed.problem
    assert "witness" in witnessed.problem


async def test_a_rechained_edit_is_located_between_two_checkpoints(target: Target) -> None:
    """An edit at 8, re-chained to the head: the checkpoint at 5 holds, the one at 10 does not."""
    await write(target)
    target.attacker.rechain(8, renamed)

    report = await target.verify()

    assert not report.ok
    assert (report.first_bad_position, report.segment) == (6, (6, 10))
    assert report.problem is not None
    assert "positions 6–10 were rewritten" in report.problem
    assert "checkpoint at position 5 still matches" in report.problem


async def test_a_cut_tail_with_its_last_checkpoints_is_caught_by_the_witness(
    target: Target,
) -> None:
    """Events after 12 and checkpoints after 10 deleted: the log alone looks killed, not cut.

    The log's own checkpoints cannot tell a cut from a killed writer, and
    verify says so; the witness still holds the checkpoints of 15 and 20.
    """
    await write(target)
    target.attacker.cut_tail(12)
    target.attacker.cut_checkpoints(10)

    alone = await target.verify()
    witnessed = await target.verify(witness=True)

    assert alone.ok
    assert (alone.closed, alone.vouched_until) == (False, 10)
    assert any("positions 11–12 come after the last checkpoint" in n for n in alone.notes)
    assert not witnessed.ok
    assert (witnessed.first_bad_position, witnessed.segment) == (13, (13, 15))
    assert witnessed.problem is not None
    assert "the log ends at position 12" in witnessed.problem
    assert "vouches for position 15" in witnessed.problem


async def test_a_log_rolled_back_together_with_its_checkpoints_is_caught_by_the_witness(
    target: Target,
) -> None:
    """Put back a copy of the log and its checkpoints from 10 events ago: only a witness knows."""
    await write(target, 10, "early")
    target.attacker.snapshot()
    await write(target, 10, "late")
    target.attacker.roll_back()

    alone = await target.verify()
    witnessed = await target.verify(witness=True)

    assert alone.ok  # an older log that was closed cleanly, as far as it can tell
    assert alone.closed is True
    assert any("no witness given" in note for note in alone.notes)
    assert not witnessed.ok
    assert (witnessed.first_bad_position, witnessed.segment) == (11, (11, 15))
    assert witnessed.problem is not None
    assert "rolled back" in witnessed.problem


async def test_a_forged_checkpoint_in_the_witness_is_refused(target: Target) -> None:
    """The writer may add to the witness, but what it adds must be signed by a pinned key."""
    await write(target)
    forger = Ed25519PrivateKey.generate()
    target.attacker.rechain(8, renamed)
    target.attacker.resign(forger, every=5)
    async with target.writer(signing_key=forger, witness=target.writer_witness) as store:
        await store.append(proposals("more", 1))

    report = await target.verify(witness=True)

    assert not report.ok
    assert report.segment == (6, 10)


def test_the_writing_role_may_only_insert_into_the_witness(pg_writer: PgWriter) -> None:
    """The umpire's role cannot read, change, delete or truncate the witness's checkpoints."""
    schema = pg_writer.witness.rsplit("schema=", 1)[1]
    table = sql.Identifier(schema, "checkpoints")
    with psycopg.connect(pg_writer.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (log, record) VALUES ('x', 'not a checkpoint')").format(table)
        )
        for statement in (
            "UPDATE {} SET record = 'x'",
            "DELETE FROM {}",
            "TRUNCATE {}",
            "SELECT record FROM {}",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql.SQL(statement).format(table))


async def _write_with_metadata(target: Target) -> None:
    """20 events with a run's metadata, the last key set after the last append."""
    async with target.writer(checkpoint_every=5) as store:
        await store.set_metadata("seed", "7")
        await store.set_metadata("scenario", '{"exercise": "drill"}')
        for start in range(0, 20, 5):
            await store.append(proposals(f"m{start}", 5))
        await store.set_metadata("clock", "simulated")


async def test_metadata_set_after_the_last_append_is_signed_by_the_closing_checkpoint(
    target: Target,
) -> None:
    await _write_with_metadata(target)

    report = await target.verify(witness=True)
    last = SignedCheckpoint.from_line(target.attacker.checkpoint_lines()[-1]).checkpoint

    assert report.ok, report.problem
    assert (report.metadata_vouched, report.metadata_changed) == (True, ())
    assert last.final
    assert last.meta is not None
    assert {"seed", "scenario", "clock", "eventlog.log_id"} <= set(last.meta)
    assert any(
        "the metadata" in note and "as the last checkpoint signs" in note for note in report.notes
    )


async def test_metadata_edited_after_the_log_was_closed_is_named(target: Target) -> None:
    """The seed changed, a key added and one removed, with SQL: verify names all three."""
    await _write_with_metadata(target)
    attacker = target.attacker

    attacker.execute("UPDATE meta SET value = ? WHERE key = 'seed'", ("8",))
    attacker.execute("INSERT INTO meta (key, value) VALUES ('speed', '60.0')")
    attacker.execute("DELETE FROM meta WHERE key = 'scenario'")
    report = await target.verify()
    attacker.execute("UPDATE meta SET value = ? WHERE key = 'seed'", ("7",))
    attacker.execute("DELETE FROM meta WHERE key = 'speed'")
    attacker.execute(
        "INSERT INTO meta (key, value) VALUES ('scenario', ?)", ('{"exercise": "drill"}',)
    )
    put_back = await target.verify()

    assert not report.ok
    assert report.problem is not None
    assert "the metadata was changed after the log was closed" in report.problem
    assert "the metadata keys 'scenario', 'seed', 'speed' differ" in report.problem
    assert "the events themselves are intact" in report.problem
    assert report.checked == 20  # every event checked out before the metadata
    assert put_back.ok, put_back.problem


async def test_metadata_edited_after_a_killed_writers_last_checkpoint_is_named_not_failed(
    target: Target,
) -> None:
    """Without a closing checkpoint the change may be the writer's own: a note names it.

    The clock was the writer's own last change, signed only by the closing
    checkpoint removed here; the seed is the edit. Neither can be told apart
    from the other, so both are named.
    """
    await _write_with_metadata(target)
    attacker = target.attacker
    attacker.write_checkpoint_lines(
        [line for line in attacker.checkpoint_lines() if not json.loads(line)["final"]]
    )

    attacker.execute("UPDATE meta SET value = ? WHERE key = 'seed'", ("8",))
    report = await target.verify()

    assert report.ok, report.problem
    assert (report.metadata_vouched, report.metadata_changed) == (False, ("clock", "seed"))
    assert any(
        "the metadata keys 'clock', 'seed' changed after the last checkpoint, which is not a "
        "closing one" in note
        for note in report.notes
    )


def _signed_for_another_log(lines: list[str]) -> list[str]:
    """The same checkpoints, signed by this machine's key for another log (another run's)."""
    key = load_or_create_signing_key()
    others = []
    for line in lines:
        claim = SignedCheckpoint.from_line(line).checkpoint
        other = dataclasses.replace(claim, log="0" * 32)
        others.append(sign_checkpoint(other, key).to_line())
    return others


@pytest.mark.parametrize("record", ["wiped", "another-logs"])
async def test_a_log_none_of_whose_checkpoints_vouch_for_it_is_not_written_on(
    target: Target, record: str
) -> None:
    """The checkpoint record wiped, or holding another log's checkpoints only (a side file
    copied from another run): the writer refuses to append (resume, run), as it does to a
    log behind its checkpoints, and the log is left as it was.

    Before: it appended: a resumed run went on over a history nothing vouched for (and
    into the other log's side file), and verify failed it afterwards.
    """
    await write(target)
    lines = target.attacker.checkpoint_lines()
    target.attacker.write_checkpoint_lines(
        [] if record == "wiped" else _signed_for_another_log(lines)
    )
    before = (target.attacker.rows(), target.attacker.checkpoint_lines())

    with pytest.raises(CorruptLogError, match=r"no checkpoint .* vouches for this log") as caught:
        async with target.writer() as store:
            await store.append(proposals("late", 1))

    assert "refusing to append to it" in str(caught.value)
    assert (target.attacker.rows(), target.attacker.checkpoint_lines()) == before
