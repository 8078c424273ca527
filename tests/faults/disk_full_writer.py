"""A writer for test_eventlog_faults.py: appends batches to a SQLite log under a file-size limit.

Run as ``python disk_full_writer.py LOG LIMIT_BYTES``. It sets RLIMIT_FSIZE (and
ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of killing
the process: a full disk, as SQLite sees it), then appends batches from
`crash_writer.batch_for`, printing ``ACK <number> <size>`` after each commit,
until an append fails: then ``FAILED <error class>: <message>`` and exit 3.
"""

import asyncio
import resource
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from simulator.eventlog import SqliteEventStore
from tests.eventlog.crash_writer import batch_for


async def write_until_full(path: Path) -> int:
    # A wall clock for the checkpoints, as the runtime would inject it.
    async with SqliteEventStore(path, now=lambda: datetime.now(UTC)) as store:
        number = 0
        while True:
            batch = batch_for(0, number)
            try:
                await store.append(batch)
            except Exception as exc:  # the point: what the failure looks like
                print(f"FAILED {type(exc).__name__}: {exc}", flush=True)
                return 3
            print(f"ACK {number} {len(batch)}", flush=True)
            number += 1


if __name__ == "__main__":
    limit = int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    code = 1
    try:
        code = asyncio.run(write_until_full(Path(sys.argv[1])))
    except Exception as exc:  # closing a full log may fail too; the parent checks the file
        print(f"CLOSE {type(exc).__name__}: {exc}", flush=True)
        code = 3
    sys.exit(code)
