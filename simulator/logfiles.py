"""Opening an event log by where it is: a SQLite path or a `postgresql://` URL.

A PostgreSQL log lives in one schema, named by a `schema` query parameter
(`postgresql://127.0.0.1/test?schema=run_42`; default `eventlog`), which is
taken off the URL before it reaches libpq. A run whose cases were split among
umpires has a log per partition, in the schemas `run_42_p0`, `run_42_p1`, …;
`run_42` then names the run: `reading` merges its partitions for a reader, and
`partition_locations` lists them for whoever checks them one by one.
"""

import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from simulator.errors import InputError
from simulator.eventlog import (
    EventStore,
    InspectableStore,
    MergedLog,
    SqliteEventStore,
)
from simulator.eventlog.checkpoints import checkpoint_path
from simulator.eventlog.lockfile import WriterLock
from simulator.lineage import whole_number
from simulator.records import UPGRADES

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


# The schemas a log may live in (`eventlog.postgres` holds its stores to the same).
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def split_postgres(url: str) -> tuple[str, str]:
    """The libpq URL without our `schema` parameter, and the schema.

    InputError for a schema no log may have (it had been a ValueError's traceback).
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), "eventlog")
    if not _SCHEMA_NAME.fullmatch(schema):
        raise InputError(
            f"postgresql schema {schema!r} (the URL's schema=): not a plain lower-case "
            "identifier; a log's schema is a-z, 0-9 and _, not starting with a digit, "
            "at most 63 characters"
        )
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


# The metadata key under which each partition's log says how many partitions the run has.
PARTITIONS_METADATA = "partitions"
# The parties a run left to `simulator party` processes (`run --external`), comma-separated:
# a resume leaves them there too.
EXTERNAL_METADATA = "external"


def local_files_stem(location: str) -> Path:
    """Where files beside a log go (its control file, its seat files): `{stem}.control.json`.

    Beside a SQLite file, the file itself. A PostgreSQL log has no place of its own
    on disk: `runs/postgres-{database}-{schema}`, so that runs in other schemas (two
    exercises at once, each partition's test) keep their files apart.
    """
    if not is_postgres(location):
        return Path(location)
    url, schema = split_postgres(location)
    database = urlsplit(url).path.strip("/") or "postgres"
    label = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{database}-{schema}")
    return Path("runs") / f"postgres-{label}"


def write_beside(path: Path, text: str) -> None:
    """Write a file beside a log for another process to read (a seat or control file).

    0600 from the start (it holds a password), and written aside and renamed into
    place: a `simulator party` or `control` started as the run writes it reads the
    whole file, never an empty or half-written one.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def open_log(
    location: str | Path,
    *,
    now: Callable[[], datetime] | None = None,
    create: bool = False,
    read_only: bool = False,
    synchronous: str = "FULL",
) -> InspectableStore:
    """A store for `location`, not yet opened (use `async with`)."""
    text = str(location)
    if is_postgres(text):
        # Imported here: psycopg costs a tenth of a second a SQLite log never needs.
        from simulator.eventlog.postgres import PostgresEventStore  # noqa: PLC0415

        url, schema = split_postgres(text)
        return PostgresEventStore(
            url, schema=schema, now=now, create=create, read_only=read_only, upgrades=UPGRADES
        )
    mode: Literal["FULL", "NORMAL"] = "NORMAL" if synchronous.upper() == "NORMAL" else "FULL"
    return SqliteEventStore(
        Path(text),
        now=now,
        create=create,
        read_only=read_only,
        synchronous=mode,
        upgrades=UPGRADES,
    )


@asynccontextmanager
async def writing(location: str) -> AsyncIterator[None]:
    """Hold the log at `location` as its one writer while the block runs.

    LogBusyError at once when another process holds it (a run still writing it).
    SQLite: a lock file beside the log (`eventlog.lockfile`); PostgreSQL: a session
    advisory lock keyed by the schema (`eventlog.lease.LogLease`). Either is
    released when the holder dies, however it dies, so a killed run can be resumed.
    """
    if not is_postgres(location):
        with WriterLock(Path(location)):
            yield
        return
    from simulator.eventlog.lease import holding_log  # noqa: PLC0415 - psycopg

    url, schema = split_postgres(location)
    async with holding_log(url, schema, location):
        yield


def sqlite_files(log: Path) -> list[Path]:
    """A SQLite log's files: the database, SQLite's own beside it, its checkpoints."""
    return [
        log,
        *(log.with_name(log.name + suffix) for suffix in ("-wal", "-shm", "-journal")),
        checkpoint_path(log),
    ]


@asynccontextmanager
async def made_or_nothing(location: str) -> AsyncIterator[None]:
    """Remove the log the block makes at `location` if the block fails: nothing is left.

    For a command that makes a new log in one go (`log import`): a refused or
    failed one would otherwise leave an empty log behind, which then stands in
    the way of the retry. A log (SQLite file or PostgreSQL schema) that was
    there before is never touched.
    """
    if not is_postgres(location):
        files = [f for f in sqlite_files(Path(location)) if not f.exists()]
        try:
            yield
        except BaseException:
            for leftover in files:
                leftover.unlink(missing_ok=True)
            raise
        return
    from simulator.eventlog.postgres import drop_schema, schema_exists  # noqa: PLC0415 - psycopg

    url, schema = split_postgres(location)
    new = not await schema_exists(url, schema)
    try:
        yield
    except BaseException:
        if new:
            await drop_schema(url, schema)
        raise


def partition_location(location: str, partition: int) -> str:
    """The log of one partition: the run's PostgreSQL URL with the schema `{schema}_p{n}`."""
    if not is_postgres(location):
        raise InputError(
            f"partitioned umpires keep their logs in PostgreSQL (their ownership is held "
            f"there): the log must be a postgresql:// URL, not {location!r}"
        )
    url, schema = split_postgres(location)
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}schema={schema}_p{partition}"


async def partition_locations(location: str | Path) -> list[str]:
    """The partitions' logs of the partitioned run at `location`; [] for any other log.

    A run's partitions are the schemas `{schema}_p0` … `{schema}_p{P-1}` where
    `{schema}` itself holds no log. A missing partition is an error that names it:
    reading the others as the whole run would silently drop its cases.
    """
    text = str(location)
    if not is_postgres(text):
        return []
    from simulator.eventlog.postgres import partition_schemas  # noqa: PLC0415 - psycopg

    url, schema = split_postgres(text)
    numbers = await partition_schemas(url, schema)
    if not numbers:
        return []
    if numbers[0] != 0:
        raise InputError(
            f"{text}: the logs of partitions {', '.join(map(str, numbers))} of a partitioned "
            f"run are there, but not partition 0's (schema {schema}_p0)"
        )
    async with open_log(partition_location(text, 0), read_only=True) as first:
        declared = await first.get_metadata(PARTITIONS_METADATA)
    recorded = whole_number(declared) if declared else None
    count = recorded if recorded is not None else len(numbers)
    missing = sorted(set(range(count)) - set(numbers))
    if missing:
        raise InputError(
            f"{text}: a run of {count} partitions, but the log of partition "
            f"{', '.join(map(str, missing))} is not there (schema {schema}_p{missing[0]})"
        )
    return [partition_location(text, n) for n in range(count)]


@asynccontextmanager
async def reading(location: str | Path) -> AsyncIterator[EventStore]:
    """A log opened read-only for a reader; a partitioned run's partitions merged as one."""
    partitions = await partition_locations(location)
    if not partitions:
        async with open_log(location, read_only=True) as store:
            yield store
        return
    stores = [open_log(p, read_only=True) for p in partitions]
    async with MergedLog(stores, str(location)) as merged:
        yield merged
