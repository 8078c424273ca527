"""Building blocks shared by the event log tests: proposals, a clock, raw access to stored rows."""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simulator.eventlog import NewEvent
from simulator.eventlog.envelope import EVENT_HASH_DOMAIN, canonical_bytes, canonical_text

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def now() -> datetime:
    """The wall clock, as the runtime would inject it."""
    return datetime.now(UTC)


def proposal(
    event_id: str,
    *,
    subject: str | None = "case-1",
    expected_version: int | None = None,
    data: dict[str, Any] | None = None,
    event_type: str = "coop.written_request",
    wallclock: datetime | None = None,
    schemaversion: int = 1,
    second: int = 0,
) -> NewEvent:
    """A proposal with sensible defaults; ``second`` moves simulated time on."""
    return NewEvent(
        id=event_id,
        source="umpire",
        type=event_type,
        subject=subject,
        time=T0 + timedelta(seconds=second),
        exercise="exercise-1",
        sender="moscow-hq",
        recipient="berlin-lka",
        wallclock=wallclock or T0,
        data=data if data is not None else {"note": f"event {event_id}"},
        schemaversion=schemaversion,
        expected_version=expected_version,
    )


def proposals(prefix: str, count: int, cases: int = 3) -> list[NewEvent]:
    """``count`` proposals spread round-robin over ``cases`` cases."""
    return [
        proposal(f"{prefix}-{i:04d}", subject=f"case-{i % cases}", second=i) for i in range(count)
    ]


def sha256_file(path: Path) -> str:
    """Digest of a file's bytes, to prove that it was not modified."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sealed_slowly(
    event: NewEvent, position: int, caseversion: int, prevhash: str
) -> tuple[str, str]:
    """(hash, line) of ``event`` stored at ``position``, made the slow way: the envelope as a
    dict of its values, through canonical_text(), times written by isoformat(). It shares
    nothing with the composition of the fast paths, so comparing the two checks it."""

    def written(moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": written(event.time),
        "datacontenttype": "application/json",
        "data": event.data,
        "exercise": event.exercise,
        "position": position,
        "caseversion": caseversion,
        "wallclock": written(event.wallclock),
        "schemaversion": event.schemaversion,
        "prevhash": prevhash,
    }
    for key in ("subject", "sender", "recipient", "correlationid", "causationid"):
        value = getattr(event, key)
        if value is not None:
            envelope[key] = value
    digest = hashlib.sha256(EVENT_HASH_DOMAIN + canonical_bytes(envelope)).hexdigest()
    return digest, canonical_text({**envelope, "hash": digest})
