"""What is particular to the SQLite store: the file format, foreign files, busy databases, keys."""

import asyncio
import random
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.eventlog import (
    CorruptLogError,
    LogNotFoundError,
    NotALogError,
    SigningKeyError,
    SqliteEventStore,
    StorageError,
    verify,
)
from simulator.eventlog.sqlite import APPLICATION_ID

from .helpers import now, proposal, proposals, sha256_file


def siblings(path: Path) -> set[str]:
    return {p.name for p in path.parent.iterdir()} - {path.name}


async def open_by(opener: str, path: Path) -> None:
    """Give the file to a writable store, or to verify()."""
    if opener == "store":
        async with SqliteEventStore(path, now=now):
            return
    await verify(path)


@contextmanager
def writer_holding_the_lock(path: Path, seconds: float) -> Iterator[threading.Thread]:
    """Another connection that takes the write lock and keeps it for ``seconds``."""
    locked = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        threading.Event().wait(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold, name="test.lock-holder")
    thread.start()
    locked.wait(5)
    try:
        yield thread
    finally:
        thread.join()


async def test_a_new_log_is_one_wal_file_marked_as_ours(tmp_path: Path) -> None:
    """A created log is in WAL mode, carries our application id and leaves no temporary files."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now) as store:
        await store.append(proposals("e", 3))

    conn = sqlite3.connect(path)
    mode, app_id = (
        conn.execute("PRAGMA journal_mode").fetchone()[0],
        conn.execute("PRAGMA application_id").fetchone()[0],
    )
    conn.close()
    assert (mode, app_id) == ("wal", APPLICATION_ID)
    assert not [name for name in siblings(path) if "creating" in name]
    assert "log.db.checkpoints" in siblings(path)


@pytest.mark.parametrize("opener", ["store", "verify"])
async def test_random_bytes_are_refused_by_path_and_left_untouched(
    tmp_path: Path, opener: str
) -> None:
    """Random bytes are not a log: the error names the path, the bytes stay as they were."""
    path = tmp_path / "noise.db"
    path.write_bytes(random.Random(7).randbytes(16384))
    before = sha256_file(path)

    with pytest.raises(NotALogError) as caught:
        await open_by(opener, path)

    assert str(path) in str(caught.value)
    assert sha256_file(path) == before
    assert siblings(path) == set()


@pytest.mark.parametrize("opener", ["store", "verify"])
async def test_a_foreign_sqlite_database_is_refused_and_left_untouched(
    tmp_path: Path, opener: str
) -> None:
    """Another application's SQLite file is refused before SQLite opens it, and left unchanged."""
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.execute("INSERT INTO contacts VALUES ('someone')")
    conn.commit()
    conn.close()
    before = sha256_file(path)

    with pytest.raises(NotALogError, match="another application") as caught:
        await open_by(opener, path)

    assert str(path) in str(caught.value)
    assert sha256_file(path) == before
    assert siblings(path) == set()


async def test_an_empty_file_is_not_taken_for_a_new_log(tmp_path: Path) -> None:
    """An existing empty file is refused rather than turned into a log."""
    path = tmp_path / "empty.db"
    path.touch()

    with pytest.raises(NotALogError, match="empty"):
        async with SqliteEventStore(path, now=now):
            pass

    assert path.stat().st_size == 0


async def test_our_marker_without_our_tables_is_a_corrupt_log(tmp_path: Path) -> None:
    """A SQLite file with our application id but without the log's tables is reported corrupt."""
    path = tmp_path / "half.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("CREATE TABLE unrelated (x)")
    conn.commit()
    conn.close()
    before = sha256_file(path)

    with pytest.raises(CorruptLogError, match="tables are missing") as caught:
        async with SqliteEventStore(path, now=now):
            pass

    assert caught.value.path == str(path)
    assert sha256_file(path) == before


async def test_a_log_with_garbage_pages_fails_verification_naming_the_path(
    tmp_path: Path,
) -> None:
    """Garbage over pages of a real log fails verify() naming the path, changing nothing."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now) as store:
        await store.append(proposals("e", 200))
    data = bytearray(path.read_bytes())
    data[4096:8192] = random.Random(3).randbytes(4096)
    path.write_bytes(bytes(data))
    before = sha256_file(path)

    report = await verify(path)

    assert not report.ok
    assert report.problem is not None
    assert str(path) in report.problem
    assert sha256_file(path) == before


async def test_a_missing_log_is_not_created_when_creation_is_off(tmp_path: Path) -> None:
    """create=False and read_only both refuse a path that does not exist, and create nothing."""
    path = tmp_path / "absent.db"

    with pytest.raises(LogNotFoundError):
        async with SqliteEventStore(path, now=now, create=False):
            pass
    with pytest.raises(LogNotFoundError):
        async with SqliteEventStore(path, read_only=True):
            pass

    assert not path.exists()


async def test_a_busy_database_is_waited_for(tmp_path: Path) -> None:
    """An append that finds another writer holding the lock waits for it and then succeeds."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now, busy_timeout_ms=3000) as store:
        with writer_holding_the_lock(path, 0.3):
            results = await store.append(proposals("e", 3))

        assert [r.position for r in results] == [1, 2, 3]


async def test_a_database_busy_beyond_the_bound_fails_loudly(tmp_path: Path) -> None:
    """When the lock stays taken past timeout and retries, the append raises and writes nothing."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now, busy_timeout_ms=50, busy_retries=1) as store:
        with writer_holding_the_lock(path, 1.5), pytest.raises(StorageError, match="busy"):
            await store.append(proposals("e", 3))
        head = await store.head()

    assert head == 0


async def test_another_signing_key_cannot_continue_a_log(tmp_path: Path) -> None:
    """A writer whose key is not the log's checkpoint key is refused; reading still works."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now) as store:
        await store.append(proposals("e", 2))

    with pytest.raises(SigningKeyError, match="not the checkpoint key"):
        async with SqliteEventStore(path, now=now, signing_key=Ed25519PrivateKey.generate()):
            pass
    async with SqliteEventStore(path, read_only=True) as reader:
        assert await reader.head() == 2


async def test_normal_synchronous_is_an_option_and_others_are_refused(tmp_path: Path) -> None:
    """synchronous="NORMAL" is accepted; anything but FULL and NORMAL is refused up front."""
    async with SqliteEventStore(tmp_path / "fast.db", now=now, synchronous="NORMAL") as store:
        await store.append(proposals("e", 2))
        assert await store.head() == 2

    with pytest.raises(ValueError, match="synchronous"):
        SqliteEventStore(tmp_path / "x.db", now=now, synchronous="OFF")  # type: ignore[arg-type]


def test_a_writable_store_needs_a_clock(tmp_path: Path) -> None:
    """Without now= a store could not time its checkpoints, so it is refused when writable."""
    with pytest.raises(ValueError, match="now="):
        SqliteEventStore(tmp_path / "log.db")


async def test_appending_leaves_the_event_loop_running(tmp_path: Path) -> None:
    """A large append runs on the store's thread; other tasks keep getting turns meanwhile."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    async with SqliteEventStore(tmp_path / "log.db", now=now) as store:
        batch = proposals("e", 20000)
        async with asyncio.TaskGroup() as group:
            ticking = group.create_task(ticker(), name="test.ticker")
            await store.append(batch)
            ticking.cancel()

    assert ticks >= 5


async def test_a_reopened_store_finds_stored_ids_and_case_versions(tmp_path: Path) -> None:
    """With nothing cached, a stored id is answered as stored and a case goes on from its last."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now) as store:
        await store.append([proposal("e1"), proposal("e2")])
    async with SqliteEventStore(path, now=now) as store:
        results = await store.append([proposal("e1"), proposal("e3"), proposal("x1", subject="c2")])
        assert [(r.position, r.caseversion, r.duplicate) for r in results] == [
            (1, 1, True),
            (3, 3, False),
            (4, 1, False),
        ]
    async with SqliteEventStore(path, now=now) as store:
        (result,) = await store.append([proposal("e4")])
        assert (result.position, result.caseversion) == (5, 4)
        assert [e.id async for e in store.read()] == ["e1", "e2", "e3", "x1", "e4"]
