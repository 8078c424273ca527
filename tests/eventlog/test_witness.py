"""The checkpoint window (count, timer, settings), the witness, and old logs that still verify."""

import asyncio
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from simulator.cli import app
from simulator.eventlog import (
    InspectableStore,
    LogError,
    PostgresEventStore,
    SettingsError,
    SignedCheckpoint,
    SqliteEventStore,
    StorageError,
    read_public_key,
    verify,
)
from simulator.eventlog.witness import WITNESS_FILE_NAME, FileWitness, WitnessEntries

from .conftest import PgWriter, StoreFactory
from .helpers import now, proposals

GOLDEN = Path(__file__).parents[1] / "golden"


async def positions(store: InspectableStore) -> list[int]:
    return [e.record.checkpoint.position for e in await store.checkpoint_entries() if e.record]


async def witnessed(witness: FileWitness, log_id: str) -> list[int]:
    held = await witness.entries(log_id)
    return [e.record.checkpoint.position for e in held.entries if e.record]


async def test_a_quiet_log_is_checkpointed_once_its_timer_runs_out(
    open_store: StoreFactory, tmp_path: Path
) -> None:
    """Appends that reach no count get a checkpoint T seconds later, copied to the witness."""
    witness = FileWitness(tmp_path / "witness.jsonl")
    async with open_store(checkpoint_every=1000, checkpoint_seconds=0.05, witness=witness) as s:
        await s.append(proposals("quiet", 3))
        # The store's own task writes it: its side file first, then the witness.
        async with asyncio.timeout(10):
            while await witnessed(witness, s.log_id) != [0, 3]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        kept = await positions(s)

    assert kept == [0, 3]


async def test_the_window_comes_from_the_environment(
    open_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIMULATOR_CHECKPOINT_EVERY sets the count when the store is not given one."""
    monkeypatch.setenv("SIMULATOR_CHECKPOINT_EVERY", "4")
    monkeypatch.setenv("SIMULATOR_CHECKPOINT_SECONDS", "0")
    async with open_store() as store:
        for start in range(0, 10, 2):
            await store.append(proposals(f"b{start}", 2))
        found = await positions(store)

    assert found == [0, 4, 8]


def test_a_bad_setting_names_its_variable(
    open_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint count of 0 in the environment is refused, naming the variable."""
    monkeypatch.setenv("SIMULATOR_CHECKPOINT_EVERY", "0")

    with pytest.raises(SettingsError, match="SIMULATOR_CHECKPOINT_EVERY"):
        open_store()


async def test_a_log_is_not_created_when_its_witness_is_unusable(tmp_path: Path) -> None:
    """A witness in a directory that does not exist stops the store before it creates the log."""
    path = tmp_path / "log.db"

    with pytest.raises(StorageError, match="witness"):
        async with SqliteEventStore(path, now=now, witness=tmp_path / "gone" / "w.jsonl"):
            pass

    assert not path.exists()


async def test_a_postgres_witness_table_that_is_missing_is_refused(
    pg_url: str, pg_schema: str
) -> None:
    """A witness schema without its table (never set up) is named, with how to create it."""
    with pytest.raises(StorageError, match="witness-init"):
        async with PostgresEventStore(
            pg_url, schema=pg_schema, now=now, witness=f"{pg_url}?schema=no_such_witness"
        ):
            pass


async def test_a_torn_witness_line_is_skipped_and_the_next_checkpoint_stands(
    tmp_path: Path,
) -> None:
    """A line torn by a killed writer does not swallow the next one; verify counts it."""
    directory = tmp_path / "witness"
    directory.mkdir()
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now, checkpoint_seconds=0, witness=directory) as store:
        await store.append(proposals("a", 2))
    with (directory / WITNESS_FILE_NAME).open("a") as file:
        file.write('{"hash":"torn')
    async with SqliteEventStore(path, now=now, checkpoint_seconds=0, witness=directory) as store:
        await store.append(proposals("b", 2))

    report = await verify(path, witness=directory)

    assert report.ok, report.problem
    assert report.witness_until == 4
    assert any("1 unreadable lines skipped" in note for note in report.notes)


class FlakyWitness:
    """A witness whose first copy fails, as a network mount or a server might."""

    def __init__(self) -> None:
        self.location = "flaky"
        self.kept: list[SignedCheckpoint] = []
        self.failures = 1

    async def open(self) -> None:
        return None

    async def open_for_writing(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def record(self, checkpoints: Sequence[SignedCheckpoint]) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageError(self.location, "unreachable")
        self.kept.extend(checkpoints)

    async def entries(self, log_id: str) -> WitnessEntries:
        del log_id
        return WitnessEntries([], 0)


async def test_a_failed_witness_copy_is_sent_with_the_next_checkpoint(tmp_path: Path) -> None:
    """The log goes on when a copy fails; the copy is not lost but sent again later."""
    witness = FlakyWitness()
    async with SqliteEventStore(
        tmp_path / "log.db", now=now, checkpoint_every=2, checkpoint_seconds=0, witness=witness
    ) as store:
        await store.append(proposals("a", 2))

    assert [c.checkpoint.position for c in witness.kept] == [0, 2, 2]
    assert [c.checkpoint.final for c in witness.kept] == [False, False, True]


async def test_a_version_1_log_with_its_checkpoints_still_verifies(tmp_path: Path) -> None:
    """The golden log written before closing checkpoints verifies against its pinned key."""
    for name in ("v1-checkpoints.db", "v1-checkpoints.db.checkpoints"):
        shutil.copy(GOLDEN / name, tmp_path / name)
    key = read_public_key(GOLDEN / "v1-checkpoints.pub")

    report = await verify(tmp_path / "v1-checkpoints.db", pinned=[key])
    appended_to = await _append_one(tmp_path / "v1-checkpoints.db")

    assert report.ok, report.problem
    assert (report.checked, report.checkpoints_checked) == (9, 4)
    assert report.closed is None  # version-1 checkpoints do not say
    assert any("do not say whether the log was closed" in note for note in report.notes)
    # Nor do they sign the metadata, and verify says so rather than vouching for it.
    assert report.metadata_vouched is None
    assert any("do not sign its metadata" in note for note in report.notes)
    assert appended_to is not None
    assert "not the checkpoint key" in appended_to


async def _append_one(path: Path) -> str | None:
    """Whether this machine may continue the golden log: no, it holds another key."""
    try:
        async with SqliteEventStore(path, now=now):
            return None
    except LogError as exc:
        return str(exc)


def test_the_writing_role_is_an_ordinary_one(pg_writer: PgWriter) -> None:
    """The fixture's writer is no superuser, so the witness's grants really bind it."""
    with psycopg.connect(pg_writer.url) as conn:
        row = conn.execute(
            sql.SQL("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ).fetchone()
    assert row == (False,)


def test_witness_init_grants_the_writer_insert_and_nothing_else(pg_url: str) -> None:
    """`log witness-init URL --writer ROLE --reader ROLE` sets up the table and its privileges."""
    suffix = uuid.uuid4().hex[:10]
    writer, reader, schema = f"w_{suffix}", f"r_{suffix}", f"witness_cli_{suffix}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for role in (writer, reader):
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    try:
        result = CliRunner().invoke(
            app,
            ["log", "witness-init", f"{pg_url}?schema={schema}", "--writer", writer,
             "--reader", reader],
        )  # fmt: skip
        with psycopg.connect(pg_url) as conn:
            granted = {
                (role, privilege): conn.execute(
                    "SELECT has_table_privilege(%s, %s, %s)",
                    (role, f"{schema}.checkpoints", privilege),
                ).fetchone()
                == (True,)
                for role in (writer, reader)
                for privilege in ("INSERT", "SELECT", "UPDATE", "DELETE", "TRUNCATE")
            }
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            for role in (writer, reader):
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))

    assert result.exit_code == 0, result.output
    assert {key for key, allowed in granted.items() if allowed} == {
        (writer, "INSERT"),
        (reader, "SELECT"),
    }
