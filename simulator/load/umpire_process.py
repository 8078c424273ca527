"""`python -m simulator.load.umpire_process`: one umpire of a partitioned load run.

It reads its `PartitionedUmpireSpec` as JSON on stdin and writes JSON lines on
stdout (`standby`, `owner`, `progress`, then `result`; `failed` if it fails), as
the load generators' worker does. SIGTERM ends it (`simulator.load.partitioned`).
"""

import asyncio
import logging
import os
import sys

import orjson

from simulator.load.partitioned import PartitionedUmpireSpec, serve
from simulator.logging import configure


def main() -> None:
    spec = PartitionedUmpireSpec.from_json(orjson.loads(sys.stdin.buffer.read()))
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    configure(level="warning")
    # Thousands of publishes await their PUBACK at once by design; aiomqtt warns of each.
    logging.getLogger("mqtt").setLevel(logging.ERROR)

    def emit(kind: str, payload: object) -> None:
        out.write(orjson.dumps({"kind": kind, "payload": payload}) + b"\n")
        out.flush()

    try:
        result = asyncio.run(serve(spec, emit))
    except Exception as exc:
        emit("failed", f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from exc
    emit("result", result)


if __name__ == "__main__":
    main()
