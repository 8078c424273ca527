"""Building blocks shared by the event log tests: proposals, a clock, raw access to stored rows."""

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simulator.eventlog import NewEvent

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
