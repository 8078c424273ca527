"""Ctrl-C or SIGTERM during `simulator load`: stop offering, drain, and still write the figures.

An engineer who stops a run (a terminal's Ctrl-C, a CI job's timeout sending
SIGTERM) had got nothing: the processes died with the run and no JSON was
written. Now the first signal tells every load generator to stop offering new
cases and drain what is open (up to `--drain`); a second one ends the drain at
once; a third gives up (Python's own KeyboardInterrupt). What ran is
reconciled as usual, nothing lost or duplicated is still proved, and the
verdict says the run was interrupted (`VERDICTS`). The run's children run in
sessions of their own, so a terminal's Ctrl-C reaches this process only, and
the generators hear it from here (SIGTERM), in order.
"""

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

# Signals that stop a run gracefully; a third one is Python's own again.
SIGNALS = (signal.SIGINT, signal.SIGTERM)
GIVE_UP_AFTER = 2


class Interruption:
    """What the run's processes are told when the person running it stops it."""

    def __init__(self, say: Callable[[str], None] = lambda _: None) -> None:
        self.count = 0
        self.say = say
        self._processes: list[asyncio.subprocess.Process] = []

    def watch(self, process: asyncio.subprocess.Process) -> None:
        """A generator ready to hear signals: told of every one so far, and of those to come."""
        self._processes.append(process)
        for _ in range(self.count):
            _terminate(process)

    def signalled(self) -> None:
        self.count += 1
        for process in self._processes:
            _terminate(process)
        if self.count == 1:
            self.say(
                "interrupted: no new cases; the open ones drain (up to --drain), then the "
                "figures are written. Again to stop draining."
            )
        else:
            self.say("interrupted again: the drain ends now; the figures follow.")


def _terminate(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)


@contextlib.contextmanager
def interruptible(interruption: Interruption) -> Iterator[None]:
    """Route SIGINT and SIGTERM to `interruption` while the running loop runs a load run."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        interruption.signalled()
        if interruption.count >= GIVE_UP_AFTER:
            # A third signal is Python's own again: KeyboardInterrupt, or SIGTERM's death.
            for each in SIGNALS:
                loop.remove_signal_handler(each)

    for each in SIGNALS:
        loop.add_signal_handler(each, on_signal, each)
    try:
        yield
    finally:
        for each in SIGNALS:
            loop.remove_signal_handler(each)


__all__ = ["Interruption", "interruptible"]
