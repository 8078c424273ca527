"""Committed events/s with one umpire, one partition and two partitions, in one run.

    python benchmarks/partitioned_load.py [--url postgresql://127.0.0.1/test]
        [--rate 4500] [--duration 15] [--broker mosquitto] [--repeat 1]

About 1-2 minutes a repeat. Three `simulator load` runs offered the same load
(more than one umpire carries on this machine, so each run's committed events/s
is what it sustains), each with its log in PostgreSQL:

(a) baseline: the single umpire, in the runner's own process (as `simulator load`
    runs without --partitions);
(b) one partition: the same umpire in a process of its own, holding its
    partition's lease and fencing token, with a standby polling beside it (what
    running partitioned costs by itself);
(c) two partitions: two umpire processes, each the single writer of half the cases.

It prints, for each, the sustained committed events/s (the median second of the
schedule), the umpires' CPU milliseconds per committed event, lost/duplicated,
and the ratios (b)/(a) and (c)/(a), with the load average before and after.
On 2 cores the broker, PostgreSQL, the generators and the umpires share the
cores, so (c)/(a) says what a second partition buys on this machine, and the CPU
per event says what it would buy where each umpire has a core of its own.

Measured here (2 cores, quiet, 2026-12-06, two runs at load 1.6-2.3): (a) 7,961 /
7,685 events/s, (b) 7,994 / 7,987, (c) 11,991 / 9,795; (c)/(a) 1.51 / 1.27; umpire
CPU 0.095-0.116 ms an event in each; 0 lost, 0 duplicated. (At 3,000 cases/s the
quiet machine was not saturated: every run carried what it was offered.)
"""

import argparse
import asyncio
import os
import uuid
from typing import Any

import psycopg
from psycopg import sql

from simulator.load import LoadOptions, run_load


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def _one(
    args: argparse.Namespace, partitions: int, own_process: bool, schema: str
) -> dict[str, Any]:
    options = LoadOptions(
        parties=8,
        rate=args.rate,
        duration_s=args.duration,
        broker=args.broker,
        processes=2,
        drain_s=5,
        log=f"{args.url}?schema={schema}",
        partitions=partitions,
        # (b): one partition with a standby runs the umpire in a process of its own;
        # without one, the runner's in-process umpire decides (a).
        standbys=1 if partitions == 1 and own_process else 0,
    )
    report = await run_load(options)
    data = report.as_json()
    cpu = data.get("cpu_ms_per_event", {})
    return {
        "events": data["events"],
        "sustained": data["committed_events_per_s_sustained"],
        "umpire_cpu_ms": cpu.get("umpire"),
        "lost": data["lost"],
        "duplicated": data["duplicated"],
        "verdict": data["verdict"],
    }


def _drop(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for name in (schema, *(f"{schema}_p{n}" for n in range(4))):
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql://127.0.0.1/test")
    parser.add_argument(
        "--rate", type=float, default=4500.0, help="cases/s offered (more than one umpire holds)"
    )
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--broker", default="mosquitto")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"load average before: {_load()}")
    rows: list[tuple[str, dict[str, Any]]] = []
    for attempt in range(args.repeat):
        for label, partitions, own_process in (
            ("(a) one umpire, in the runner", 1, False),
            ("(b) one partition, own process", 1, True),
            ("(c) two partitions", 2, True),
        ):
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            try:
                result = asyncio.run(_one(args, partitions, own_process, schema))
            finally:
                _drop(args.url, schema)
            rows.append((label, result))
            print(
                f"[{attempt + 1}] {label:32s} {result['sustained']:>8.1f} events/s sustained, "
                f"{result['events']} events, umpire CPU {result['umpire_cpu_ms']} ms/event, "
                f"lost {result['lost']}, duplicated {result['duplicated']} "
                f"({result['verdict']}; load {_load()})",
                flush=True,
            )
        base = rows[-3][1]["sustained"] or 1.0
        print(
            f"[{attempt + 1}] ratios: (b)/(a) {rows[-2][1]['sustained'] / base:.2f}, "
            f"(c)/(a) {rows[-1][1]['sustained'] / base:.2f}"
        )
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
