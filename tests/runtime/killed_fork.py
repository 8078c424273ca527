"""A fork for test_forks.py that is killed (SIGKILL) around its copy of the parent's events.

Run as ``python killed_fork.py PARENT AT OUTPUT MOMENT``: `simulator fork` as the
command line runs it, whose log store kills the process at its first append (the
copy of the parent's first AT events): ``before`` it is committed, or ``after``.
Nothing runs after the kill, as after a power cut or an OOM kill.
"""

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any
from unittest import mock

from simulator.eventlog import Appended, InspectableStore, NewEvent
from simulator.logfiles import open_log as opening
from simulator.run.replay import fork


def _killing(moment: str) -> Any:
    def open_log(*args: Any, **kwargs: Any) -> InspectableStore:
        store = opening(*args, **kwargs)
        append = store.append

        async def append_and_die(batch: Sequence[NewEvent]) -> list[Appended]:
            if moment == "after":
                await append(batch)
            os.kill(os.getpid(), signal.SIGKILL)
            raise AssertionError("not reached")

        store.append = append_and_die  # type: ignore[method-assign]
        return store

    return open_log


if __name__ == "__main__":
    parent, at, output, moment = sys.argv[1:]
    with mock.patch("simulator.run.exercise.open_log", _killing(moment)):
        asyncio.run(fork(parent, int(at), output))
