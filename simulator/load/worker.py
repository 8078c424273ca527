"""`python -m simulator.load.worker`: one load generator process.

It reads its `GeneratorSpec` as JSON on stdin and writes JSON lines on
stdout: progress once a second, then its result. A plain subprocess rather
than multiprocessing: spawning re-imports the parent's main module, which a
user's script may not guard. Anything else that would print (logging) goes
to stderr, so stdout carries only those lines.
"""

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from simulator.load.generator import (
    Generator,
    GeneratorResult,
    result_to_json,
    spec_from_json,
)
from simulator.logging import configure

# A directory: each generator writes a pyinstrument profile there (benchmarks/load.py --profile).
PROFILE_ENV = "SIMULATOR_LOAD_PROFILE"


def lines_to_parent() -> Callable[[str, object], None]:
    """Stdout for JSON lines to the parent only: anything else that prints goes to stderr.

    Returns `emit(kind, payload)`. Also quiets what would drown stderr: a load
    run's processes keep thousands of publishes awaiting their PUBACK by design,
    and aiomqtt warns of each one past ten.
    """
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    configure(level="warning")
    logging.getLogger("mqtt").setLevel(logging.ERROR)

    def emit(kind: str, payload: object) -> None:
        out.write(orjson.dumps({"kind": kind, "payload": payload}) + b"\n")
        out.flush()

    return emit


def main() -> None:
    spec = spec_from_json(orjson.loads(sys.stdin.buffer.read()))
    emit = lines_to_parent()

    profile_dir = os.environ.get(PROFILE_ENV)
    profiler = None
    if profile_dir:
        from pyinstrument import Profiler  # noqa: PLC0415 - a dev tool, only when asked

        profiler = Profiler(interval=0.005)
        profiler.start()
    generator = Generator(spec)

    async def interruptible() -> GeneratorResult:
        # The run's parent says the run is being stopped (`simulator.load.interrupt`).
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, generator.interrupt)
        # From now on a signal is heard, not fatal: the parent holds its word till then.
        emit("ready", None)
        return await generator.run(lambda snap: emit("progress", snap))

    try:
        result = asyncio.run(interruptible())
    except Exception as exc:
        emit("failed", f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from exc
    if profiler is not None and profile_dir:
        profiler.stop()
        path = Path(profile_dir) / f"generator-{spec.index}.txt"
        path.write_text(profiler.output_text(show_all=False), encoding="utf-8")
    emit("result", result_to_json(result))


if __name__ == "__main__":
    main()
