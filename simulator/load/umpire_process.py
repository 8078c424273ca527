"""`python -m simulator.load.umpire_process`: one umpire of a partitioned load run.

It reads its `PartitionedUmpireSpec` as JSON on stdin and writes JSON lines on
stdout (`standby`, `owner`, `progress`, then `result`; `failed` if it fails), as
the load generators' worker does. SIGTERM ends it (`simulator.load.partitioned`).
"""

import asyncio
import sys

import orjson

from simulator.load.partitioned import PartitionedUmpireSpec, serve
from simulator.load.worker import lines_to_parent


def main() -> None:
    spec = PartitionedUmpireSpec.from_json(orjson.loads(sys.stdin.buffer.read()))
    emit = lines_to_parent()
    try:
        result = asyncio.run(serve(spec, emit))
    except Exception as exc:
        emit("failed", _described(exc))
        raise SystemExit(1) from exc
    emit("result", result)


def _described(exc: BaseException) -> str:
    """What went wrong, in words: the first real error, not the task group around it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    main()
