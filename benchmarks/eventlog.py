"""Event log append throughput against a raw sqlite3 baseline.

    python benchmarks/eventlog.py [--events N]

(a) baseline: sqlite3 executemany of exactly the rows our store writes (same
    tables and indexes, bodies and hashes precomputed), WAL, synchronous=FULL,
    one transaction per 1000 rows;
(b) SqliteEventStore.append with 100 and with 1000 events per batch, FULL;
(c) SqliteEventStore.append with one event per call, FULL;
then, on a log of real protocol messages (cases of four to six messages):
(d) baseline: sqlite3 SELECT of every stored body, each parsed and dropped,
    with json.loads and with pydantic-core's from_json (the store's parser;
    orjson is as fast); ratios are to the faster;
(e) the store's read(), which checks every event against its hash and
    its row, parses it and checks the chain (verify() does the full check);
(f) a fold of the whole log through the case projection (the protocol fold),
    and, for comparison, the same fold over events already in memory.
Proposals (NewEvent) are built before the clock starts, as the umpire builds
them while validating; their construction cost is printed separately, for the
proposals of (a)-(c) and for the protocol messages of (d)-(f).
"""

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic_core import from_json

from simulator.eventlog import NewEvent, SqliteEventStore
from simulator.eventlog.batch import Row, plan_batch
from simulator.eventlog.envelope import GENESIS_HASH, seal
from simulator.eventlog.sqlite import INSERT_SQL, SCHEMA_SQL
from simulator.projections import CaseProjection, catch_up
from simulator.protocol import Agreement, Official, Party, parse_message
from simulator.protocol.drafting import REQUEST_TYPES, draft
from simulator.umpire.sequencer import Sequencer

BASE = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CASES = 500
PARSERS: dict[str, Callable[[bytes], object]] = {"json.loads": json.loads, "from_json": from_json}


def raw_read(path: Path, parse: Callable[[bytes], object]) -> float:
    """Events/s of SELECT + parse of every stored body, each dropped after parsing, as a fold
    drops each event after folding it (keeping them all makes the collector rescan them)."""
    started = time.perf_counter()
    count = 0
    with sqlite3.connect(path) as db:
        for (body,) in db.execute("SELECT CAST(body AS BLOB) FROM events"):
            parse(body)
            count += 1
    return count / (time.perf_counter() - started)


def proposal_keywords(i: int) -> dict[str, Any]:
    """A typical committed message: a request in one of CASES cases, a few fields of data."""
    case = i % CASES
    return {
        "id": f"msg-{i:09d}",
        "source": "umpire",
        "type": "coop.written_request",
        "subject": f"case-{case:05d}",
        "time": BASE + timedelta(seconds=i // 10),
        "exercise": "bench-exercise",
        "sender": f"party-{case % 7}",
        "recipient": f"party-{(case + 3) % 7}",
        "correlationid": f"case-{case:05d}",
        "wallclock": BASE + timedelta(microseconds=i),
        "data": {
            "area": "public_order",
            "purpose": "exchange of information on a cross-border incident",
            "items": ["identity of the vehicle owner", "registration history"],
            "deadline_days": 10,
            "urgent": i % 5 == 0,
            "sequence": i,
        },
    }


def proposal(i: int) -> NewEvent:
    return NewEvent(**proposal_keywords(i))


def proposals(count: int) -> tuple[list[NewEvent], float, float]:
    """The proposals, the seconds taken making them, and the seconds in NewEvent(...) alone."""
    started = time.perf_counter()
    events = [proposal(i) for i in range(count)]
    made = time.perf_counter() - started
    keywords = [proposal_keywords(i) for i in range(count)]
    started = time.perf_counter()
    again = [NewEvent(**given) for given in keywords]
    constructed = time.perf_counter() - started
    assert again == events
    return events, made, constructed


def rows_for(events: Sequence[NewEvent]) -> list[Row]:
    """The exact rows the store writes for these events into an empty log."""
    plan = plan_batch(events, head=0, last_hash=GENESIS_HASH, existing={}, versions={})
    return plan.rows


def baseline(path: Path, rows: list[Row], per_transaction: int = 1000) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for statement in SCHEMA_SQL:
        conn.execute(statement)
    started = time.perf_counter()
    for start in range(0, len(rows), per_transaction):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_SQL, rows[start : start + per_transaction])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


async def ours(path: Path, events: list[NewEvent], per_batch: int) -> float:
    key = Ed25519PrivateKey.generate()
    async with SqliteEventStore(
        path, now=lambda: datetime.now(UTC), signing_key=key, synchronous="FULL"
    ) as store:
        started = time.perf_counter()
        for start in range(0, len(events), per_batch):
            await store.append(events[start : start + per_batch])
        elapsed = time.perf_counter() - started
    return len(events) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--single-events",
        type=int,
        default=2_000,
        help="events for the one-per-append run (each is an fsync)",
    )
    parser.add_argument("--fold-events", type=int, default=100_000)
    args = parser.parse_args()

    events, build_seconds, construct_seconds = proposals(args.events)
    rows = rows_for(events)
    print(f"events: {args.events}, body ~{sum(len(r[6]) for r in rows) // len(rows)} bytes")
    print(f"NewEvent construction (not timed below): {build_seconds / args.events * 1e6:.1f} us")
    per_event = construct_seconds / args.events * 1e6
    print(f"    of which NewEvent(...) itself:       {per_event:.1f} us")
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        raw = baseline(folder / "raw.db", rows)
        print(f"(a) raw sqlite3 executemany, 1000/txn, FULL: {raw:>10,.0f} events/s")
        for per_batch in (100, 1000):
            rate = await ours(folder / f"batch{per_batch}.db", events, per_batch)
            print(
                f"(b) append, {per_batch:>4}/batch, FULL:            {rate:>10,.0f} events/s"
                f"   ratio to (a): {rate / raw:.2f}"
            )
        single = events[: args.single_events]
        rate = await ours(folder / "single.db", single, 1)
        print(
            f"(c) append, one per call, FULL:          {rate:>10,.0f} events/s"
            f"   ratio to (a): {rate / raw:.3f}"
        )
    await reading(args.fold_events)


PATHS = (
    ("written_request", "acknowledgement", "acceptance", "results"),
    ("written_request", "consultation", "conditions_accepted", "results"),
    ("written_request", "acknowledgement", "refusal"),
    ("oral_request", "written_confirmation", "acceptance", "information_request",
     "additional_information", "results"),
)  # fmt: skip
REQUESTING_SENDS = frozenset(
    {"written_request", "oral_request", "written_confirmation", "conditions_accepted",
     "additional_information"}
)  # fmt: skip
CONTENT = {
    "area": "public_order",
    "essence": "A cross-border sports event needs coordinated patrols.",
    "purpose": "Coordinate public order measures.",
    "justification": "Large crowds cross the border on match days.",
    "assistance_sought": "Exchange of patrol schedules.",
    "urgent": True,
}


def bench_agreement() -> Agreement:
    return Agreement.of(
        [
            Party(
                id=f"agency-{n}",
                name=f"Agency {n}",
                head=Official(name=f"Head {n}"),
                deputies=(Official(name=f"Deputy {n}"),),
                seal=f"SEAL-{n}",
                coordination_unit=f"Unit {n}",
            )
            for n in range(8)
        ]
    )


def protocol_log(count: int, agreement: Agreement) -> list[NewEvent]:
    """`count` events of real cases, built as the umpire builds them (sequencer + fold)."""
    parties = list(agreement.parties.values())
    sequencer = Sequencer(agreement, "bench", wallclock=lambda: BASE)
    events: list[NewEvent] = []
    case = 0
    while len(events) < count:
        requesting, requested = parties[case % 8], parties[(case + 3) % 8]
        at = BASE + timedelta(hours=case)
        oral = None
        for step, kind in enumerate(PATHS[case % len(PATHS)]):
            sender, recipient = (
                (requesting, requested) if kind in REQUESTING_SENDS else (requested, requesting)
            )
            fields: dict[str, object] = dict(CONTENT) if kind in REQUEST_TYPES else {}
            if kind == "written_confirmation":
                fields["confirms"] = oral
            message_id = f"{sender.id}.{case}.{step}"
            oral = message_id if kind == "oral_request" else oral
            data = draft(
                kind,
                message_id=message_id,
                case_id=f"case-{case:06d}",
                sender=sender,
                recipient=recipient,
                fields=fields,
            )
            sequencer.record(parse_message(data), at + timedelta(minutes=step), party=sender.id)
        batch = sequencer.take()
        sequencer.committed(batch)
        events.extend(batch.events)
        case += 1
    return events[:count]


async def reading(count: int) -> None:
    agreement = bench_agreement()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "protocol.db"
        started = time.perf_counter()
        events = protocol_log(count, agreement)
        built = time.perf_counter() - started
        print(f"\nprotocol log: {len(events)} events, built through the sequencer in {built:.1f} s")
        construction(events)
        key = Ed25519PrivateKey.generate()
        async with SqliteEventStore(path, now=lambda: BASE, signing_key=key) as store:
            for i in range(0, len(events), 1000):
                await store.append(events[i : i + 1000])
        # Each timed section below keeps only its own objects alive: the
        # collector's full passes scan every live object, so garbage kept from
        # an earlier section would slow the later ones down.
        del events
        rates = {name: raw_read(path, parse) for name, parse in PARSERS.items()}
        for name, rate in rates.items():
            print(f"(d) raw SELECT + {name + ':':<24}{rate:>10,.0f} events/s")
        raw = max(rates.values())
        async with SqliteEventStore(path, read_only=True) as store:
            # Each event dropped once counted, as a fold drops it, like the baseline.
            started = time.perf_counter()
            count = 0
            async for _ in store.read():
                count += 1
            rate = count / (time.perf_counter() - started)
            print(
                f"(e) store.read():                         {rate:>10,.0f} events/s"
                f"   ratio to (d): {rate / raw:.2f}"
            )
            print(f"    that is {1e6 / rate:.1f} us per event")
            cases = CaseProjection(agreement=agreement)
            started = time.perf_counter()
            await catch_up(store, cases)
            rate = cases.position / (time.perf_counter() - started)
            print(
                f"(f) read + fold through case projection:  {rate:>10,.0f} events/s"
                f"   ratio to (d): {rate / raw:.2f}   cases: {len(cases.cases)},"
                f" findings: {len(cases.findings)}, divergences: {len(cases.divergences)}"
            )
            del cases
            read = [e async for e in store.read()]
            cases = CaseProjection(agreement=agreement)
            started = time.perf_counter()
            cases.apply_all(read)
            fold_alone = len(read) / (time.perf_counter() - started)
            print(f"    the fold alone, events in memory:     {fold_alone:>10,.0f} events/s")


def construction(events: Sequence[NewEvent], sample: int = 20_000) -> None:
    """Time NewEvent(...) for protocol messages, from the plain values the sequencer passes."""
    keywords = [
        {name: getattr(event, name) for name in NewEvent.model_fields} for event in events[:sample]
    ]
    started = time.perf_counter()
    for given in keywords:
        NewEvent(**given)
    elapsed = time.perf_counter() - started
    body = sum(len(seal(event, 1, 1, GENESIS_HASH)[1]) for event in events[:sample])
    print(
        f"NewEvent construction, protocol messages (body ~{body // len(keywords)} bytes): "
        f"{elapsed / len(keywords) * 1e6:.1f} us"
    )


if __name__ == "__main__":
    asyncio.run(main())
