"""Building committed events from proposals and the store's results, without reading back."""

from datetime import UTC, datetime
from pathlib import Path

from simulator.eventlog import (
    GENESIS_HASH,
    NewEvent,
    SqliteEventStore,
    committed_event,
    to_json_line,
)


async def test_built_events_equal_the_events_read_back(tmp_path: Path) -> None:
    """An event built from its proposal and Appended is the one the store reads back."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    proposals = [
        NewEvent(
            id=f"e{i}",
            source="umpire",
            type="coop.test",
            subject="case-1" if i % 2 else None,
            time=at,
            data={"n": i, "text": "é"},
            exercise="ex",
            wallclock=at,
        )
        for i in range(5)
    ]
    async with SqliteEventStore(tmp_path / "log.db", now=lambda: at) as store:
        results = await store.append(proposals)
        stored = [e async for e in store.read()]
    prevhash = GENESIS_HASH
    built = []
    for proposal, result in zip(proposals, results, strict=True):
        built.append(
            committed_event(proposal, result.position, result.caseversion, prevhash, result.hash)
        )
        prevhash = result.hash
    assert built == stored
    assert [to_json_line(e) for e in built] == [to_json_line(e) for e in stored]
