"""Schema upgrades: old events come out at the current version; the stored bytes never change."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from simulator.eventlog import CorruptLogError, SqliteEventStore, UpgradeRegistry, compute_hash

from .helpers import now, proposal

SAMPLE = "coop.sample_request"


def sample_registry() -> UpgradeRegistry:
    """The sample: v1 {"name"} -> v2 {"full_name"} -> v3 adds {"language": "en"}."""
    registry = UpgradeRegistry()

    @registry.register(SAMPLE, 1)
    def rename(data: dict[str, Any]) -> dict[str, Any]:
        return {"full_name": data.pop("name")}

    @registry.register(SAMPLE, 2)
    def add_language(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "language": "en"}

    return registry


def v1(event_id: str, name: str) -> Any:
    return proposal(event_id, event_type=SAMPLE, data={"name": name})


def test_the_current_version_is_one_past_the_last_upgrader() -> None:
    """With upgraders from 1 and 2, events of the type come out at version 3; others at 1."""
    registry = sample_registry()

    assert registry.current_version(SAMPLE) == 3
    assert registry.current_version("coop.other") == 1


def test_a_second_upgrader_for_the_same_step_is_refused() -> None:
    """Two upgraders for one (type, version) would make loading ambiguous."""
    registry = sample_registry()

    with pytest.raises(ValueError, match="exists"):
        registry.add(SAMPLE, 1, lambda data: data)


async def test_old_events_are_upgraded_in_a_chain_on_every_read(tmp_path: Path) -> None:
    """Version 1 events come out at version 3 from read, read_case and follow alike."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now) as store:
        await store.append([v1("a", "Ada"), proposal("b", data={"untouched": True})])

    async with SqliteEventStore(path, read_only=True, upgrades=sample_registry()) as store:
        read = [event async for event in store.read()]
        case = await store.read_case("case-1")
        followed = []
        async for event in store.follow():
            followed.append(event)
            if len(followed) == 2:
                break

    assert read == case == followed
    assert (read[0].schemaversion, read[0].data) == (3, {"full_name": "Ada", "language": "en"})
    assert (read[1].schemaversion, read[1].data) == (1, {"untouched": True})


async def test_upgrading_never_touches_the_stored_event(tmp_path: Path) -> None:
    """Raw reads give the stored version 1 bytes, still matching their hash."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now, upgrades=sample_registry()) as store:
        await store.append([v1("a", "Ada")])
        [upgraded] = [event async for event in store.read()]
        [stored] = [event async for event in store.read(upgrade=False)]

    assert stored.data == {"name": "Ada"}
    assert compute_hash(stored) == stored.hash == upgraded.hash


async def test_hashes_are_checked_before_upgrading(tmp_path: Path) -> None:
    """A tampered version 1 event is refused even though an upgrader would rewrite it."""
    path = tmp_path / "log.db"
    async with SqliteEventStore(path, now=now) as store:
        await store.append([v1("a", "Ada")])
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE events SET body = replace(body, 'Ada', 'Eve')")
    conn.close()

    async with SqliteEventStore(path, read_only=True, upgrades=sample_registry()) as store:
        with pytest.raises(CorruptLogError, match="does not match its hash"):
            _ = [event async for event in store.read()]
