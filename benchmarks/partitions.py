"""PostgreSQL append throughput of one log against two partition logs written at once.

    python benchmarks/partitions.py [--url postgresql://127.0.0.1/test] [--events N] [--batch B]

What partitioned umpires (issue 18) would ask of the shared database, measured on its
own, before any umpire is partitioned: each partition is its own log (one schema, its
own hash chain), written by its own process.

(a) baseline: one process appends N events in batches of B to one log, with the
    checkpoints of a run (PostgresEventStore, as the umpire writes);
(b) two processes, each appending N/2 events to its own partition log at the same
    time, the second holding its partition's lease (eventlog/lease.py) as an owner would.
It prints events/s of each and the ratio (b)/(a), with the load average: on 2 cores
the database, the two writers and the machine's other work share the cores, so the
ratio says how much of a second partition this machine can use, not a cluster's.
"""

import argparse
import asyncio
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from simulator.eventlog import NewEvent, PostgresEventStore
from simulator.eventlog.lease import PartitionLease
from simulator.protocol.ids import partition_of

BASE = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _proposals(prefix: str, count: int, partitions: int, partition: int) -> list[NewEvent]:
    """`count` events of cases that fall in `partition` (as a partitioned umpire's would)."""
    events: list[NewEvent] = []
    number = 0
    while len(events) < count:
        case = f"case-{number % 500}"
        number += 1
        if partition_of(case, partitions) != partition:
            continue
        events.append(
            NewEvent(
                id=f"{prefix}-{len(events):07d}",
                source="umpire",
                type="coop.note",
                time=BASE + timedelta(seconds=len(events)),
                subject=case,
                data={"note": "x" * 200, "n": len(events)},
                exercise="bench",
                wallclock=BASE,
            )
        )
    return events


async def _append(
    url: str, schema: str, events: Sequence[NewEvent], batch: int, ready: Callable[[], None]
) -> tuple[float, float]:
    async with (
        PartitionLease(url, schema, 0) as lease,
        PostgresEventStore(url, schema=schema, now=lambda: BASE, checkpoint_every=1000) as store,
    ):
        if not await lease.try_acquire():
            raise SystemExit(f"partition {schema} is owned by another process")
        ready()  # every writer connected and its events built: start together
        started = time.perf_counter()
        for start in range(0, len(events), batch):
            await store.append(events[start : start + batch])
        return started, time.perf_counter()


def _writer(
    url: str,
    schema: str,
    count: int,
    partitions: int,
    partition: int,
    batch: int,
    barrier: Any = None,
    results: Any = None,
) -> tuple[float, float]:
    events = _proposals(schema, count, partitions, partition)
    span = asyncio.run(
        _append(url, schema, events, batch, barrier.wait if barrier else lambda: None)
    )
    if results is not None:
        results.put(span)
    return span


def _drop(url: str, schemas: Sequence[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    os.environ.setdefault("SIMULATOR_KEY_DIR", f"/tmp/bench-partitions-keys-{os.getpid()}")
    tag = uuid.uuid4().hex[:8]
    one = f"bench_one_{tag}"
    parts = [f"bench_p{n}_{tag}" for n in range(2)]
    try:
        begun, ended = _writer(args.url, one, args.events, 1, 0, args.batch)
        single = ended - begun
        context = multiprocessing.get_context("spawn")
        half = args.events // 2
        barrier, results = context.Barrier(2), context.Queue()
        writers = [
            context.Process(
                target=_writer,
                args=(args.url, parts[n], half, 2, n, args.batch, barrier, results),
            )
            for n in range(2)
        ]
        for writer in writers:
            writer.start()
        spans = [results.get() for _ in writers]
        for writer in writers:
            writer.join()
        # From the first writer's start to the last one's end (perf_counter is system-wide
        # on Linux: CLOCK_MONOTONIC).
        both = max(end for _, end in spans) - min(start for start, _ in spans)
    finally:
        _drop(args.url, [one, *parts])
    rate_one = args.events / single
    rate_two = 2 * half / both
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load}; {args.events:,} events in batches of {args.batch}")
    print(f"(a) one log, one writer:        {rate_one:10,.0f} events/s")
    print(f"(b) two partitions, two writers: {rate_two:10,.0f} events/s")
    print(f"ratio (b)/(a): {rate_two / rate_one:.2f}")


if __name__ == "__main__":
    main()
