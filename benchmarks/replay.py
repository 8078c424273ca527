"""Folding a recorded log into projections, against a raw read+parse baseline.

    python benchmarks/replay.py [--events N]

Builds a log of N real protocol events (cases of three to six messages,
built through the sequencer as the umpire builds them), then measures in one
run: (a) the baseline: raw sqlite3 SELECT of every stored body, each parsed
and dropped as a fold would, once with json.loads and once with pydantic-core's
from_json (the parser the store uses; orjson is as fast); ratios are to the
faster of the two; (b) the store's read(), which also checks every event's
hash, its row and the chain; (c) read + fold through the case projection;
(d) read + the case, timeline and milestones projections together, as a
replay or a report does; and, for the split, the case projection alone over
events already read. Target: (c) >= 150k events/s.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.eventlog import SqliteEventStore
from simulator.projections import (
    CaseProjection,
    MilestonesProjection,
    TimelineProjection,
    catch_up,
)

sys.path.insert(0, str(Path(__file__).parent))
from eventlog import BASE, PARSERS, bench_agreement, protocol_log, raw_read

TARGET = 150_000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    agreement = bench_agreement()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "replay.db"
        started = time.perf_counter()
        events = protocol_log(args.events, agreement)
        key = Ed25519PrivateKey.generate()
        async with SqliteEventStore(path, now=lambda: BASE, signing_key=key) as store:
            for i in range(0, len(events), 1000):
                await store.append(events[i : i + 1000])
        print(f"log: {len(events)} events written in {time.perf_counter() - started:.1f} s")

        rates = {name: raw_read(path, parse) for name, parse in PARSERS.items()}
        for name, rate in rates.items():
            print(f"(a) raw SELECT + {name + ':':<22}{rate:>10,.0f} events/s")
        raw = max(rates.values())

        async with SqliteEventStore(path, read_only=True) as store:
            started = time.perf_counter()
            count = 0
            async for _ in store.read():
                count += 1
            rate = count / (time.perf_counter() - started)
            print(f"(b) store.read():                       {rate:>10,.0f} events/s"
                  f"   x{rate / raw:.2f} of (a)")  # fmt: skip

            cases = CaseProjection(agreement)
            started = time.perf_counter()
            await catch_up(store, cases)
            fold = cases.position / (time.perf_counter() - started)
            verdict = "meets" if fold >= TARGET else "misses"
            print(f"(c) read + case projection:             {fold:>10,.0f} events/s"
                  f"   x{fold / raw:.2f} of (a); {verdict} the {TARGET:,}/s target;"
                  f" {len(cases.cases)} cases, {len(cases.findings)} findings,"
                  f" {len(cases.divergences)} divergences")  # fmt: skip
            del cases

            marks, timeline = MilestonesProjection(), TimelineProjection()
            marks.agreement = agreement
            started = time.perf_counter()
            await catch_up(store, marks, timeline)
            rate = marks.position / (time.perf_counter() - started)
            print(f"(d) read + milestones and timeline:     {rate:>10,.0f} events/s"
                  f"   x{rate / raw:.2f} of (a)")  # fmt: skip
            del marks, timeline

            read = [event async for event in store.read()]
            cases = CaseProjection(agreement)
            started = time.perf_counter()
            cases.apply_all(read)
            rate = len(read) / (time.perf_counter() - started)
            print(f"    the case projection alone, over events already read: {rate:,.0f} events/s")


if __name__ == "__main__":
    asyncio.run(main())
