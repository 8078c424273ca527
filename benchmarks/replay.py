"""Folding a recorded log into projections, against a raw read+parse baseline.

    python benchmarks/replay.py [--events N] [--repeat R] [--log PATH]

Builds a log of N real protocol events (cases of three to six messages,
built through the sequencer as the umpire builds them), then measures in one
run: (a) the baseline: raw sqlite3 SELECT of every stored body, each parsed
and dropped as a fold would, with json.loads, pydantic-core's from_json and
orjson.loads; ratios are to SELECT + orjson.loads (issue 16's baseline);
(b) the store's read(), which also checks every event's hash, its row and the
chain; (c) read + fold through the case projection; (d) read + the timeline
and milestones projections together, as a report does; and, for the split,
the case projection alone over events already read. Targets: (c) >= 0.5 of
the baseline measured in the same run, and >= 150k events/s.

Then (e), what bounds (c): each step of it timed alone, in microseconds per
event, over the same rows in memory: the SELECT of the columns a read needs,
the hash check of each line, the typed decode of the envelope with its row and
chain checks, the message's validation, and the fold. The first two are the
floor of any read that checks the chain, whatever decodes and folds after them.

Each rate is the best of --repeat runs (default 3): the machine is shared,
and the best run is the one least disturbed by others. With --log the log is
kept there and used again by the next run, so that two commits are measured
on the same log.
"""

import argparse
import asyncio
import gc
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.eventlog import EventStore, SqliteEventStore
from simulator.eventlog.envelope import hash_holds
from simulator.eventlog.stored import decode_row
from simulator.projections import (
    CaseProjection,
    MilestonesProjection,
    TimelineProjection,
    catch_up,
)
from simulator.protocol import Agreement, Case, apply
from simulator.records import read_message

sys.path.insert(0, str(Path(__file__).parent))
from eventlog import BASE, PARSERS, bench_agreement, protocol_log, raw_read

TARGET = 150_000
RATIO_TARGET = 0.5


async def best(repeat: int, run: Callable[[], Awaitable[float]]) -> float:
    """The highest rate of ``repeat`` runs."""
    return max([await run() for _ in range(repeat)])


async def make_log(path: Path, count: int, agreement: Agreement) -> None:
    started = time.perf_counter()
    events = protocol_log(count, agreement)
    key = Ed25519PrivateKey.generate()
    async with SqliteEventStore(path, now=lambda: BASE, signing_key=key) as store:
        for i in range(0, len(events), 1000):
            await store.append(events[i : i + 1000])
    print(f"log: {len(events)} events written in {time.perf_counter() - started:.1f} s")


async def baseline(path: Path, repeat: int) -> float:
    """Prints SELECT + each parser's rate; returns SELECT + orjson.loads's."""

    async def select(parse: Callable[[bytes], object]) -> float:
        return raw_read(path, parse)

    rates = {
        name: await best(repeat, lambda parse=parse: select(parse))
        for name, parse in {**PARSERS, "orjson.loads": orjson.loads}.items()
    }
    for name, rate in rates.items():
        print(f"(a) raw SELECT + {name + ':':<22}{rate:>10,.0f} events/s")
    return rates["orjson.loads"]


async def reading(store: EventStore, agreement: Agreement, raw: float, repeat: int) -> None:
    async def read() -> float:
        started = time.perf_counter()
        count = 0
        async for _ in store.read():
            count += 1
        return count / (time.perf_counter() - started)

    rate = await best(repeat, read)
    print(f"(b) store.read():                       {rate:>10,.0f} events/s"
          f"   x{rate / raw:.2f} of (a)")  # fmt: skip

    folded: list[CaseProjection] = []

    async def fold() -> float:
        folded.clear()
        cases = CaseProjection(agreement)
        started = time.perf_counter()
        await catch_up(store, cases)
        elapsed = time.perf_counter() - started
        folded.append(cases)
        return cases.position / elapsed

    rate = await best(repeat, fold)
    cases = folded.pop()
    verdict = "meets" if rate / raw >= RATIO_TARGET else "misses"
    print(f"(c) read + case projection:             {rate:>10,.0f} events/s"
          f"   x{rate / raw:.2f} of (a); {verdict} the x{RATIO_TARGET} target"
          f" ({'meets' if rate >= TARGET else 'misses'} {TARGET:,}/s);"
          f" {len(cases.cases)} cases, {len(cases.findings)} findings,"
          f" {len(cases.divergences)} divergences")  # fmt: skip
    del cases

    async def report_folds() -> float:
        marks, timeline = MilestonesProjection(), TimelineProjection()
        marks.agreement = agreement
        started = time.perf_counter()
        await catch_up(store, marks, timeline)
        return marks.position / (time.perf_counter() - started)

    rate = await best(repeat, report_folds)
    print(f"(d) read + milestones and timeline:     {rate:>10,.0f} events/s"
          f"   x{rate / raw:.2f} of (a)")  # fmt: skip

    read_before = [event async for event in store.read()]
    alone = CaseProjection(agreement)
    started = time.perf_counter()
    alone.apply_all(read_before)
    rate = len(read_before) / (time.perf_counter() - started)
    print(f"    the case projection alone, over events already read: {rate:,.0f} events/s")


def per_event(run: Callable[[], int], repeat: int) -> float:
    """The least microseconds per event of ``repeat`` runs of ``run`` (which returns its count)."""
    best_time = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        count = run()
        best_time = min(best_time, (time.perf_counter() - started) / count)
    return best_time * 1e6


def bounds(path: Path, agreement: Agreement, raw: float, repeat: int) -> None:
    """Prints (e): each step of read + case projection alone, in us per event."""
    select = (
        "SELECT position, id, subject, caseversion, type, hash, CAST(body AS BLOB)"
        " FROM events ORDER BY position"
    )
    with sqlite3.connect(path) as db:

        def fetch() -> int:
            return len(db.execute(select).fetchall())

        fetched = per_event(fetch, repeat)
        rows = db.execute(select).fetchall()
    # The rows, the events and the messages are kept for the steps after: frozen, so
    # that the collector does not rescan them in every step.
    gc.freeze()

    def hashes() -> int:
        for row in rows:
            hash_holds(row[6])
        return len(rows)

    def decode() -> int:
        for row in rows:
            decode_row("bench", row, None)
        return len(rows)

    hashed, decoded = per_event(hashes, repeat), per_event(decode, repeat)
    events = [decode_row("bench", row, None) for row in rows]
    gc.freeze()

    def validate() -> int:
        for event in events:
            read_message(event)
        return len(events)

    validated = per_event(validate, repeat)
    folds = [(read_message(e), e.time) for e in events if e.type.startswith("coop.msg.")]
    gc.freeze()

    def fold() -> int:
        cases: dict[str, Case | None] = {}
        for message, at in folds:
            cases[message.case_id], _ = apply(cases.get(message.case_id), message, at, agreement)
        return len(folds)

    folded = per_event(fold, repeat)
    gc.unfreeze()
    baseline = 1e6 / raw
    floor = fetched + hashed
    print(f"(e) what bounds (c), each step alone (us/event; (a) takes {baseline:.2f}):")
    print(f"    SELECT of the read's columns   {fetched:5.2f}")
    print(f"    hash check of each line        {hashed:5.2f}"
          f"   (these two: x{baseline / floor:.2f} of (a), the ceiling of any read"
          " that checks the chain)")  # fmt: skip
    print(f"    decode_row (hash, envelope)    {decoded:5.2f}")
    print(f"    the message's validation       {validated:5.2f}")
    print(f"    the fold (protocol.apply)      {folded:5.2f}")
    total = fetched + decoded + validated + folded
    print(f"    sum {total:.2f}: x{baseline / total:.2f} of (a), with no cost between the steps")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--log",
        type=Path,
        help="keep the log here, and use it if it is there (to compare commits on one log)",
    )
    args = parser.parse_args()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    agreement = bench_agreement()
    with tempfile.TemporaryDirectory() as directory:
        path = args.log or Path(directory) / "replay.db"
        if path.exists():
            print(f"log: {path}, made before")
        else:
            await make_log(path, args.events, agreement)
        raw = await baseline(path, args.repeat)
        async with SqliteEventStore(path, read_only=True) as store:
            await reading(store, agreement, raw, args.repeat)
        bounds(path, agreement, raw, args.repeat)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
