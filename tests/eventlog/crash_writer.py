"""A writer for test_crash.py: appends batches to a SQLite log until killed.

Run as ``python crash_writer.py LOG RUN``. After each batch has committed it
prints ``ACK <run> <batch number> <size>`` and flushes, so the parent knows
exactly which batches were acknowledged. Batches are a pure function of
(run, number), so the parent can rebuild the one that was in flight.
"""

import asyncio
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simulator.eventlog import NewEvent, SqliteEventStore

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CHECKPOINT_EVERY = 40


def batch_for(run: int, number: int) -> list[NewEvent]:
    """Batch ``number`` of writer ``run``: 1 to 20 events over five cases."""
    rng = random.Random(f"{run}:{number}")
    size = rng.randint(1, 20)
    return [
        NewEvent(
            id=f"r{run}-b{number}-{index}of{size}",
            source="umpire",
            type="coop.written_request",
            subject=f"case-{rng.randrange(5)}",
            time=T0 + timedelta(seconds=number),
            exercise="crash",
            wallclock=T0,
            data={"run": run, "batch": number, "index": index, "pad": "x" * rng.randrange(200)},
        )
        for index in range(size)
    ]


async def write_forever(path: Path, run: int) -> None:
    async with SqliteEventStore(
        path, now=lambda: datetime.now(UTC), checkpoint_every=CHECKPOINT_EVERY
    ) as store:
        number = 0
        while True:
            batch = batch_for(run, number)
            await store.append(batch)
            print(f"ACK {run} {number} {len(batch)}", flush=True)
            number += 1


if __name__ == "__main__":
    asyncio.run(write_forever(Path(sys.argv[1]), int(sys.argv[2])))
