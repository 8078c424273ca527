"""The EventStore contract: every test here runs on SQLite and on PostgreSQL."""

import asyncio
from datetime import timedelta

import pytest

from simulator.eventlog import (
    CorruptLogError,
    DuplicateIdMismatch,
    Event,
    InspectableStore,
    LogError,
    UpgradeRegistry,
    VersionConflict,
    compute_hash,
    from_json_line,
    to_json_line,
    verify,
)
from simulator.eventlog.envelope import GENESIS_HASH, stored_hash
from simulator.eventlog.stored import PAGE_SIZE, TURN_EVERY

from .conftest import RawSql, StoreFactory
from .helpers import T0, proposal, proposals


async def collect(store: InspectableStore, from_position: int = 1) -> list[Event]:
    return [event async for event in store.read(from_position)]


async def test_append_assigns_consecutive_positions_and_case_versions(
    store: InspectableStore,
) -> None:
    """Positions count up from 1 across the log; versions count up from 1 within each case."""
    batch = [
        proposal("a", subject="case-1"),
        proposal("b", subject="case-2"),
        proposal("c", subject="case-1"),
        proposal("d", subject=None),
    ]

    results = await store.append(batch)

    assert [(r.position, r.caseversion, r.duplicate) for r in results] == [
        (1, 1, False),
        (2, 1, False),
        (3, 2, False),
        (4, 0, False),
    ]


async def test_read_returns_what_was_appended_with_a_valid_hash_chain(
    store: InspectableStore,
) -> None:
    """Read gives back every event in position order; each hash recomputes and links backwards."""
    results = await store.append(proposals("e", 5))

    events = await collect(store)

    assert [e.id for e in events] == [f"e-{i:04d}" for i in range(5)]
    assert [e.hash for e in events] == [r.hash for r in results]
    assert all(compute_hash(e) == e.hash for e in events)
    assert [e.prevhash for e in events] == [GENESIS_HASH] + [e.hash for e in events[:-1]]
    assert events[0].data == {"note": "event e-0000"}
    assert events[0].time == T0


async def test_read_stops_at_until_and_starts_at_from_position(store: InspectableStore) -> None:
    """read(from, until) yields exactly the positions from..until."""
    await store.append(proposals("e", 10))

    events = [event async for event in store.read(4, until=6)]

    assert [e.position for e in events] == [4, 5, 6]


async def test_head_is_zero_when_empty_and_the_last_position_after_appends(
    store: InspectableStore,
) -> None:
    """head() is 0 for a new log and the last position afterwards."""
    empty = await store.head()
    await store.append(proposals("e", 7))

    assert (empty, await store.head()) == (0, 7)


async def test_empty_batch_appends_nothing(store: InspectableStore) -> None:
    """Appending an empty batch returns no results and leaves the head alone."""
    assert await store.append([]) == []
    assert await store.head() == 0


async def test_a_batch_that_fails_writes_nothing(store: InspectableStore) -> None:
    """When the third event of a batch conflicts, the first two are not written either."""
    await store.append([proposal("first", subject="case-1")])
    batch = [
        proposal("x1", subject="case-2"),
        proposal("x2", subject="case-3"),
        proposal("x3", subject="case-1", expected_version=0),
    ]

    with pytest.raises(VersionConflict):
        await store.append(batch)

    assert await store.head() == 1
    assert await store.read_case("case-2") == []


async def test_a_repeated_id_returns_the_original_position_and_writes_nothing(
    store: InspectableStore,
) -> None:
    """Appending an id again answers with the original position, caseversion and hash."""
    [original] = await store.append([proposal("msg-1")])
    await store.append([proposal("msg-2")])

    [again] = await store.append([proposal("msg-1")])

    assert again.duplicate
    assert (again.position, again.caseversion, again.hash) == (
        original.position,
        original.caseversion,
        original.hash,
    )
    assert await store.head() == 2


async def test_a_repeat_within_one_batch_is_one_event(store: InspectableStore) -> None:
    """An id twice in one batch is written once; the second answer is a duplicate of the first."""
    results = await store.append([proposal("m"), proposal("n"), proposal("m")])

    assert [(r.id, r.position, r.duplicate) for r in results] == [
        ("m", 1, False),
        ("n", 2, False),
        ("m", 1, True),
    ]
    assert await store.head() == 2


async def test_a_repeat_after_reopening_is_a_duplicate(open_store: StoreFactory) -> None:
    """Idempotency survives closing and reopening the log."""
    async with open_store() as first:
        [original] = await first.append([proposal("msg-1")])

    async with open_store() as second:
        [again] = await second.append([proposal("msg-1")])
        head = await second.head()

    assert again.duplicate
    assert again.position == original.position
    assert head == 1


async def test_a_retry_with_another_wallclock_is_still_the_same_event(
    store: InspectableStore,
) -> None:
    """time and wallclock say when a message was recorded, so a retry may differ there."""
    await store.append([proposal("msg-1")])

    [again] = await store.append([proposal("msg-1", wallclock=T0 + timedelta(seconds=5))])

    assert again.duplicate


async def test_a_repeated_id_with_other_content_is_refused_by_name(
    store: InspectableStore,
) -> None:
    """Reusing an id for different data raises DuplicateIdMismatch naming the id and fields."""
    await store.append([proposal("msg-1", data={"text": "hello"})])

    with pytest.raises(DuplicateIdMismatch) as caught:
        await store.append([proposal("msg-1", data={"text": "changed"})])

    assert caught.value.event_id == "msg-1"
    assert caught.value.position == 1
    assert caught.value.fields == ("data",)
    assert await store.head() == 1


async def test_a_stale_expected_version_is_a_clear_conflict_and_a_reload_fixes_it(
    store: InspectableStore,
) -> None:
    """A writer that expected an old version gets VersionConflict; after reloading it succeeds."""
    await store.append([proposal("a", subject="case-7", expected_version=0)])
    await store.append([proposal("b", subject="case-7", expected_version=1)])

    with pytest.raises(VersionConflict) as caught:
        await store.append([proposal("c", subject="case-7", expected_version=1)])
    current = len(await store.read_case("case-7"))
    [result] = await store.append([proposal("c", subject="case-7", expected_version=current)])

    conflict = caught.value
    assert (conflict.case_id, conflict.expected, conflict.actual) == ("case-7", 1, 2)
    assert "case-7" in str(conflict)
    assert "version 2" in str(conflict)
    assert (result.position, result.caseversion) == (3, 3)


async def test_read_case_returns_one_case_in_version_order(store: InspectableStore) -> None:
    """read_case gives the events of one case only, by case version."""
    await store.append(proposals("e", 9, cases=3))

    events = await store.read_case("case-1")

    assert [e.caseversion for e in events] == [1, 2, 3]
    assert [e.id for e in events] == ["e-0001", "e-0004", "e-0007"]


async def test_follow_yields_existing_events_then_new_ones(store: InspectableStore) -> None:
    """A follower started on a log sees what is there and then what is appended later."""
    await store.append(proposals("old", 2))
    seen: list[str] = []

    async def follow() -> None:
        async for event in store.follow():
            seen.append(event.id)
            if len(seen) == 4:
                return

    async with asyncio.TaskGroup() as group:
        group.create_task(asyncio.wait_for(follow(), timeout=10), name="test.follower")
        await asyncio.sleep(0.05)
        await store.append(proposals("new", 2))

    assert seen == ["old-0000", "old-0001", "new-0000", "new-0001"]


async def test_follow_sees_appends_made_through_another_store(open_store: StoreFactory) -> None:
    """A follower on one connection sees what a writer on another commits (by polling)."""
    async with open_store(poll_interval=0.05) as reader, open_store() as writer:
        seen: list[int] = []

        async def follow() -> None:
            async for event in reader.follow(1):
                seen.append(event.position)
                if len(seen) == 3:
                    return

        async with asyncio.TaskGroup() as group:
            group.create_task(asyncio.wait_for(follow(), timeout=10), name="test.follower")
            await asyncio.sleep(0.1)
            await writer.append(proposals("w", 3))

    assert seen == [1, 2, 3]


async def test_metadata_is_kept_and_reserved_keys_are_refused(open_store: StoreFactory) -> None:
    """Metadata set through one store is there after reopening; eventlog.* keys are the store's."""
    async with open_store() as first:
        await first.set_metadata("scenario", "baltic-2026.yaml")
        await first.set_metadata("seed", "42")
        await first.set_metadata("seed", "43")
        with pytest.raises(ValueError, match="reserved"):
            await first.set_metadata("eventlog.log_id", "mine")

    async with open_store() as second:
        metadata = await second.metadata()
        seed = await second.get_metadata("seed")
        missing = await second.get_metadata("parent_log")

    assert metadata["scenario"] == "baltic-2026.yaml"
    assert seed == "43"
    assert missing is None
    assert {"eventlog.format", "eventlog.log_id", "eventlog.checkpoint_key"} <= metadata.keys()


async def test_reopening_keeps_every_event_and_the_head(open_store: StoreFactory) -> None:
    """Closing and reopening a log changes nothing that was in it."""
    async with open_store() as first:
        await first.append(proposals("e", 12))
        before = await collect(first)

    async with open_store() as second:
        after = await collect(second)
        head = await second.head()
        [next_one] = await second.append([proposal("later", subject="case-0")])

    assert after == before
    assert head == 12
    assert (next_one.position, next_one.caseversion) == (13, 5)


async def test_a_fresh_log_verifies(store: InspectableStore) -> None:
    """verify() accepts an untouched log, checking every event and checkpoint."""
    await store.append(proposals("e", 20))

    report = await verify(store)

    assert report.ok, report.problem
    assert report.checked == 20


async def test_close_writes_a_checkpoint_at_the_head(open_store: StoreFactory) -> None:
    """A store that appended leaves a signed checkpoint of its head when it closes."""
    async with open_store(checkpoint_every=1000) as first:
        await first.append(proposals("e", 5))
    async with open_store(read_only=True) as reader:
        entries = await reader.checkpoint_entries()

    positions = [e.record.checkpoint.position for e in entries if e.record is not None]
    assert positions == [0, 5]


async def test_checkpoints_are_written_every_n_events(open_store: StoreFactory) -> None:
    """With checkpoint_every=N, a batch that takes the log N past the last checkpoint makes one."""
    async with open_store(checkpoint_every=10) as store:
        for start in range(0, 25, 5):
            await store.append(proposals(f"b{start}", 5))
        entries = await store.checkpoint_entries()

    positions = [e.record.checkpoint.position for e in entries if e.record is not None]
    assert positions == [0, 10, 20]


async def test_a_cut_tail_is_caught_against_the_last_checkpoint(
    open_store: StoreFactory, raw_sql: RawSql
) -> None:
    """Deleting the newest events leaves a valid chain; verify names the first missing position."""
    async with open_store() as writer:
        await writer.append(proposals("e", 10))
    raw_sql("DELETE FROM events WHERE position > 7")

    async with open_store(read_only=True) as reader:
        report = await verify(reader)

    assert not report.ok
    assert report.first_bad_position == 8
    assert report.problem is not None
    assert "tail was cut off" in report.problem


async def test_a_writer_refuses_a_log_behind_its_checkpoint(
    open_store: StoreFactory, raw_sql: RawSql
) -> None:
    """Appending on top of a cut or rolled-back log is refused when the store opens."""
    async with open_store() as writer:
        await writer.append(proposals("e", 10))
    raw_sql("DELETE FROM events WHERE position > 7")

    with pytest.raises(LogError, match="rolled back"):
        async with open_store():
            pass


async def test_upgrades_apply_on_read_and_never_to_the_stored_bytes(
    open_store: StoreFactory,
) -> None:
    """Events stored at version 1 come out upgraded; raw reads and hashes stay as stored."""
    upgrades = UpgradeRegistry()
    upgrades.add("coop.greeting", 1, lambda data: {"text": data["greeting"]})
    async with open_store(upgrades=upgrades) as store:
        await store.append([proposal("g", event_type="coop.greeting", data={"greeting": "hi"})])

        [upgraded] = [event async for event in store.read()]
        [stored] = [event async for event in store.read(upgrade=False)]
        [in_case] = await store.read_case("case-1")

    assert (upgraded.schemaversion, upgraded.data) == (2, {"text": "hi"})
    assert in_case == upgraded
    assert (stored.schemaversion, stored.data) == (1, {"greeting": "hi"})
    assert compute_hash(stored) == stored.hash == upgraded.hash


async def test_a_read_only_store_refuses_to_write(open_store: StoreFactory) -> None:
    """A store opened read-only reads, and refuses appends and metadata changes."""
    async with open_store() as writer:
        await writer.append(proposals("e", 2))

    async with open_store(read_only=True) as reader:
        head = await reader.head()
        with pytest.raises(LogError, match="read-only"):
            await reader.append(proposals("more", 1))
        with pytest.raises(LogError, match="read-only"):
            await reader.set_metadata("seed", "1")

    assert head == 2


async def test_reading_leaves_the_event_loop_running(store: InspectableStore) -> None:
    """Events are decoded on the event loop as they are read; other tasks get turns meanwhile."""
    await store.append(proposals("e", PAGE_SIZE))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    async with asyncio.TaskGroup() as group:
        ticking = group.create_task(ticker(), name="test.ticker")
        reader = store.read(1, PAGE_SIZE)
        # One page: after the first event the rest are decoded without a fetch.
        await anext(reader)
        before = ticks
        read = 1 + len([event async for event in reader])
        during = ticks - before
        ticking.cancel()

    assert read == PAGE_SIZE
    assert during >= PAGE_SIZE // TURN_EVERY // 2


# -- reading trusts the store's own rows, and still refuses damaged ones -----


def rehashed(body: str) -> tuple[str, str]:
    """The body with its hash member recomputed (as a forger would), and that hash."""
    found = stored_hash(body)
    assert found is not None
    claimed, digest = found
    return body.replace(f'"hash":"{claimed}"', f'"hash":"{digest}"'), digest


async def stored_body(store: InspectableStore, position: int) -> str:
    async for row in store.stored_rows(position):
        return row.body
    raise AssertionError(f"no row at position {position}")


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def test_events_read_back_as_full_validation_of_their_stored_text_gives_them(
    store: InspectableStore,
) -> None:
    """read() builds, from each row, the very event from_json_line builds from its text."""
    await store.append(
        [
            proposal("a"),
            proposal("b", subject=None, data={}),
            proposal("c", data={"text": "Grüße, Москва", "nested": [{"x": [1.5, None, True]}]}),
            proposal("d", subject="case-ü", event_type="coop.ä", schemaversion=3),
        ]
    )
    rows = [row async for row in store.stored_rows()]

    events = [event async for event in store.read(upgrade=False)]

    validated = [from_json_line(row.body) for row in rows]
    assert events == validated
    assert [e.model_dump() for e in events] == [e.model_dump() for e in validated]
    assert [list(e.model_dump()) for e in events] == [list(e.model_dump()) for e in validated]
    assert [to_json_line(e) for e in events] == [row.body for row in rows]
    assert await store.read_case("case-ü") == [validated[3]]


async def test_numbers_of_every_size_read_back_exactly(store: InspectableStore) -> None:
    """Integers past 64 bits stay integers and floats keep their value and their text."""
    data = {"big": 2**70, "negative": -(2**65), "tiny": 1e-05, "huge": 1e16, "third": 1 / 3}
    await store.append([proposal("n", data=data)])

    [event] = [event async for event in store.read()]

    assert event.data == data
    assert type(event.data["big"]) is int
    assert to_json_line(event) == await stored_body(store, 1)
    assert (await verify(store)).ok


async def test_a_changed_event_is_refused_when_read(
    open_store: StoreFactory, raw_sql: RawSql
) -> None:
    """A stored text edited behind the store's back no longer matches its hash: read refuses it."""
    async with open_store() as writer:
        await writer.append(proposals("e", 3))
    raw_sql("UPDATE events SET body = replace(body, 'event e-0001', 'event X') WHERE position = 2")

    async with open_store(read_only=True) as reader:
        with pytest.raises(CorruptLogError, match="does not match its hash") as caught:
            _ = [event async for event in reader.read()]

    assert caught.value.position == 2


@pytest.mark.parametrize(
    ("column", "value"),
    [("id", "'someone-else'"), ("caseversion", "99"), ("type", "'coop.other'")],
)
async def test_a_row_whose_columns_disagree_with_its_text_is_refused_when_read(
    open_store: StoreFactory, raw_sql: RawSql, column: str, value: str
) -> None:
    """A row whose indexed columns no longer say what its text says is refused, naming both."""
    async with open_store() as writer:
        await writer.append(proposals("e", 3))
    raw_sql(f"UPDATE events SET {column} = {value} WHERE position = 2")

    async with open_store(read_only=True) as reader:
        with pytest.raises(CorruptLogError, match=f"row's {column} disagree") as caught:
            _ = [event async for event in reader.read()]

    assert caught.value.position == 2


async def test_a_row_moved_to_another_case_is_refused_by_read_case(
    open_store: StoreFactory, raw_sql: RawSql
) -> None:
    """read_case selects by the subject column: a row whose text names another case is refused."""
    async with open_store() as writer:
        await writer.append(proposals("e", 3))
    raw_sql("UPDATE events SET subject = 'case-9' WHERE position = 2")

    async with open_store(read_only=True) as reader:
        with pytest.raises(CorruptLogError, match="row's subject disagree") as caught:
            await reader.read_case("case-9")

    assert caught.value.position == 2


@pytest.mark.parametrize(
    ("change", "replacement"),
    [
        ('"position":3', '"position":"3"'),
        ('"specversion":"1.0"', '"specversion":"2.0"'),
        ('Z","type"', '","type"'),
        ('{"caseversion"', '{"extra":1,"caseversion"'),
        ('"data":{"note":"event e-0002"}', '"data":"event e-0002"'),
    ],
)
async def test_a_forged_row_that_is_not_an_event_is_refused_when_read(
    open_store: StoreFactory, raw_sql: RawSql, change: str, replacement: str
) -> None:
    """A row rewritten with a matching hash but not the shape of an event is refused by read."""
    async with open_store() as writer:
        await writer.append(proposals("e", 3))
        body = await stored_body(writer, 3)
    assert change in body
    forged, digest = rehashed(body.replace(change, replacement))
    raw_sql(f"UPDATE events SET body = {quoted(forged)}, hash = '{digest}' WHERE position = 3")

    async with open_store(read_only=True) as reader:
        with pytest.raises(CorruptLogError, match="not a valid event") as caught:
            _ = [event async for event in reader.read()]

    assert caught.value.position == 3


@pytest.mark.parametrize("value", ["coop-sim-eventlog/9", None])
async def test_a_log_whose_format_record_was_changed_or_removed_says_which(
    open_store: StoreFactory, raw_sql: RawSql, value: str | None
) -> None:
    """A format record of another version, or none at all: refused naming what it says.

    Before: a record saying `coop-sim-eventlog/9` was called missing (SQLite), or the
    schema said to have none (PostgreSQL).
    """
    async with open_store() as writer:
        await writer.append(proposals("e", 2))
    if value is None:
        raw_sql("DELETE FROM meta WHERE key = 'eventlog.format'")
    else:
        raw_sql(f"UPDATE meta SET value = '{value}' WHERE key = 'eventlog.format'")

    with pytest.raises(LogError) as caught:
        async with open_store(read_only=True):
            pass

    said = str(caught.value)
    if value is None:
        assert "its format record is missing" in said
    else:
        assert f"its format record says {value!r}, not 'coop-sim-eventlog/1'" in said
