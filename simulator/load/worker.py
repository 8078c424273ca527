"""`python -m simulator.load.worker`: one load generator process.

It reads its `GeneratorSpec` as JSON on stdin and writes JSON lines on
stdout: progress once a second, then its result. A plain subprocess rather
than multiprocessing: spawning re-imports the parent's main module, which a
user's script may not guard. Anything else that would print (logging) goes
to stderr, so stdout carries only those lines.
"""

import asyncio
import os
import sys

import orjson

from simulator.load.generator import Generator, result_to_json, spec_from_json
from simulator.logging import configure


def main() -> None:
    spec = spec_from_json(orjson.loads(sys.stdin.buffer.read()))
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    configure(level="warning")

    def emit(kind: str, payload: object) -> None:
        out.write(orjson.dumps({"kind": kind, "payload": payload}) + b"\n")
        out.flush()

    try:
        result = asyncio.run(Generator(spec).run(lambda snap: emit("progress", snap)))
    except Exception as exc:
        emit("failed", f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from exc
    emit("result", result_to_json(result))


if __name__ == "__main__":
    main()
