"""Opening an event log by where it is: a SQLite path or a `postgresql://` URL.

A PostgreSQL log lives in one schema, named by a `schema` query parameter
(`postgresql://127.0.0.1/test?schema=run_42`; default `eventlog`), which is
taken off the URL before it reaches libpq.
"""

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from simulator.eventlog import InspectableStore, PostgresEventStore, SqliteEventStore
from simulator.records import UPGRADES

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def split_postgres(url: str) -> tuple[str, str]:
    """The libpq URL without our `schema` parameter, and the schema."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), "eventlog")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


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
