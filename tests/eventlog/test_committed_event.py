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
from simulator.eventlog.envelope import seal


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


async def test_a_built_event_carries_the_line_the_store_wrote(tmp_path: Path) -> None:
    """The line a built event publishes is the stored text; a copy with other data recomposes it."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    proposal = NewEvent(
        id="e1", source="umpire", type="coop.test", time=at, data={"n": 1}, exercise="ex",
        wallclock=at,
    )  # fmt: skip
    async with SqliteEventStore(tmp_path / "log.db", now=lambda: at) as store:
        (result,) = await store.append([proposal])
        (row,) = [r async for r in store.stored_rows()]
    built = committed_event(
        proposal, result.position, result.caseversion, GENESIS_HASH, result.hash
    )
    assert to_json_line(built) == row.body
    changed = built.model_copy(update={"data": {"n": 2}})
    assert to_json_line(changed) != row.body
    assert '"data":{"n":2}' in to_json_line(changed)


def test_a_line_sealed_elsewhere_is_not_taken_for_the_event() -> None:
    """A proposal sealed at another place last gives its event a line composed afresh."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    proposal = NewEvent(
        id="e1", source="umpire", type="coop.test", time=at, exercise="ex", wallclock=at
    )
    digest, line = seal(proposal, 1, 0, GENESIS_HASH)
    seal(proposal, 2, 0, digest)
    built = committed_event(proposal, 1, 0, GENESIS_HASH, digest)
    assert to_json_line(built) == line
