"""From stored rows back to events: hash checked on the stored bytes, parsed, upgraded, chained.

Shared by the backends so that every read, on every backend, refuses a row
that no longer matches its hash, whose columns disagree with its text, or a
sequence that skips a position or breaks the chain, rather than handing a
projection something the log never said. Beyond that a read trusts the rows
its store wrote: once a line's bytes match its hash, it is decoded by a typed
decoder of the envelope's shape (msgspec), not validated field by field;
verify() re-checks them all.
"""

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from pydantic import ValidationError

from simulator.eventlog.envelope import (
    GENESIS_HASH,
    Event,
    from_json_line,
    hash_holds,
    trusted_event,
)
from simulator.eventlog.errors import CorruptLogError
from simulator.eventlog.upgrade import UpgradeRegistry

PAGE_SIZE = 1000
TURN_EVERY = 100
"""A reader gives other tasks a turn after this many events (a millisecond or so of decoding)."""
MAX_POLL_INTERVAL = 5.0
"""The longest a follower may sleep between looks at the database."""

READ_COLUMNS = "position, id, subject, caseversion, type, hash, body"
"""What a backend selects for decode_row, in this order (body as text or UTF-8 bytes)."""

ReadRow = tuple[int, str, str | None, int, str, str, str | bytes]


class _StoredEnvelope(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The shape of a stored line, its fields in Event's order (asdict() keeps it)."""

    id: str
    source: str
    type: str
    subject: str | None = None
    time: datetime
    data: dict[str, Any]
    exercise: str
    sender: str | None = None
    recipient: str | None = None
    correlationid: str | None = None
    causationid: str | None = None
    wallclock: datetime
    schemaversion: Annotated[int, msgspec.Meta(ge=1)]
    specversion: Literal["1.0"]
    datacontenttype: Literal["application/json"]
    position: Annotated[int, msgspec.Meta(ge=1)]
    caseversion: Annotated[int, msgspec.Meta(ge=0)]
    prevhash: str
    hash: str


# msgspec, not pydantic-core's from_json and a walk of its dict: it parses
# straight into the typed fields (a third of the time, measured), keeps
# integers past 64 bits as integers, and is strict as the model is ("5" is
# not an int, true not a number).
_DECODE_STORED = msgspec.json.Decoder(_StoredEnvelope).decode
_as_fields = msgspec.structs.asdict
_REQUIRED = frozenset(
    name
    for name, field in zip(
        _StoredEnvelope.__struct_fields__, msgspec.structs.fields(_StoredEnvelope), strict=True
    )
    if field.required
)
_OPTIONAL = ("subject", "sender", "recipient", "correlationid", "causationid")
# The canonical text leaves out an optional attribute that is unset, so the
# attributes a line gave are the required ones and the optional ones not None:
# one set for each combination, looked up rather than built per event.
_GIVEN = {
    present: _REQUIRED.union(name for name, there in zip(_OPTIONAL, present, strict=True) if there)
    for present in itertools.product((False, True), repeat=len(_OPTIONAL))
}


def decode_stored(body: str | bytes) -> Event:
    """The event a stored line holds, for a reader that has checked it against its hash.

    The store wrote it canonical and valid, so its shape is checked (types,
    required members, UTC times, the case version against the subject) and
    nothing more; a line of another shape goes through full validation
    (envelope.from_json_line), and so gives the same event or raises
    pydantic.ValidationError as that does.
    """
    try:
        stored = _DECODE_STORED(body)
    except msgspec.DecodeError:  # also msgspec.ValidationError, its subclass
        return from_json_line(body)
    subject = stored.subject
    if (
        stored.time.tzinfo is not UTC
        or stored.wallclock.tzinfo is not UTC
        or (subject is None) != (stored.caseversion == 0)
    ):
        return from_json_line(body)
    given = _GIVEN[
        subject is not None,
        stored.sender is not None,
        stored.recipient is not None,
        stored.correlationid is not None,
        stored.causationid is not None,
    ]
    # A set of its own: pydantic may add to an event's fields_set (model_copy).
    return trusted_event(_as_fields(stored), set(given))


def decode_row(location: str, row: ReadRow, upgrades: UpgradeRegistry | None) -> Event:
    """The event a row holds; CorruptLogError if its bytes, parse or columns are not right."""
    position, event_id, subject, caseversion, event_type, column_hash, body = row
    if not hash_holds(body.encode() if isinstance(body, str) else body):
        raise CorruptLogError(
            location,
            "the stored event does not match its hash (changed after it was written)",
            position,
        )
    try:
        event = decode_stored(body)
    except ValidationError as exc:
        raise CorruptLogError(
            location, f"the stored event is not a valid event ({exc.errors()[0]['msg']})", position
        ) from exc
    # The fields themselves, not the model's attributes: a fifth of the cost.
    fields = event.__dict__
    if (
        fields["position"] != position
        or fields["hash"] != column_hash
        or fields["id"] != event_id
        or fields["subject"] != subject
        or fields["caseversion"] != caseversion
        or fields["type"] != event_type
    ):
        columns = {
            "position": (position, event.position),
            "id": (event_id, event.id),
            "subject": (subject, event.subject),
            "caseversion": (caseversion, event.caseversion),
            "type": (event_type, event.type),
            "hash": (column_hash, event.hash),
        }
        raise CorruptLogError(location, columns_apart(columns), position)
    return upgrades.upgrade(event) if upgrades is not None else event


def columns_apart(columns: Mapping[str, tuple[object, object]]) -> str:
    """Which of a row's columns say other than its stored event, and what each says
    (`columns`: name -> (the column, the event's own))."""
    apart = {name: pair for name, pair in columns.items() if pair[0] != pair[1]}
    verb = "disagrees" if len(apart) == 1 else "disagree"
    said = "; ".join(
        f"{name}: the row says {column!r}, the event {stored!r}"
        for name, (column, stored) in apart.items()
    )
    return f"the row's {', '.join(apart)} {verb} with its stored event ({said})"


FetchRows = Callable[[int, int | None, int], Awaitable[Sequence[ReadRow]]]
"""fetch(from_position, until, limit): rows as selected with READ_COLUMNS, in position order."""


async def chained(
    location: str,
    fetch: FetchRows,
    from_position: int,
    until: int | None,
    upgrades: UpgradeRegistry | None,
    wait: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[Event]:
    """Events from ``from_position`` (to ``until``), checking each follows the one before.

    Without ``wait`` it stops at the head; with it, it calls ``wait`` whenever
    it has caught up and then looks again, forever.
    """
    if from_position < 1:
        raise ValueError("positions start at 1")
    expected = from_position
    prevhash = GENESIS_HASH if from_position == 1 else None
    while until is None or expected <= until:
        rows = await fetch(expected, until, PAGE_SIZE)
        for row in rows:
            # Decoded one by one as they are consumed, not a page at a time:
            # an event a reader drops at once then dies young, while a page of
            # a thousand live events is promoted through the collector's
            # generations and makes it scan the whole heap (a third of the
            # cost of reading, measured).
            event = decode_row(location, row, upgrades)
            if event.position != expected:
                raise CorruptLogError(
                    location,
                    f"position {expected} is missing (the next is {event.position})",
                    expected,
                )
            if prevhash is not None and event.prevhash != prevhash:
                raise CorruptLogError(
                    location, "prevhash does not match the hash of the event before", expected
                )
            yield event
            prevhash = event.hash
            expected += 1
            if expected % TURN_EVERY == 0:
                # Decoding runs on the event loop now, so let other tasks in.
                await asyncio.sleep(0)
        if len(rows) < PAGE_SIZE:
            if wait is None:
                return
            await wait()


class Wakeup:
    """Lets followers in this process wake at once on a local append, and poll otherwise."""

    def __init__(self, poll_interval: float) -> None:
        if not 0 < poll_interval <= MAX_POLL_INTERVAL:
            raise ValueError(f"poll_interval must be in (0, {MAX_POLL_INTERVAL}] seconds")
        self.poll_interval = poll_interval
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake everyone waiting now."""
        self._event.set()
        self._event = asyncio.Event()

    def waiter(self) -> Callable[[], Awaitable[None]]:
        """A wait function for chained(); it arms before the next look, so no append is missed."""
        armed = self._event

        async def wait() -> None:
            nonlocal armed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await armed.wait()
            armed = self._event

        return wait
