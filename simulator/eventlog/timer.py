"""The checkpoint timer: a checkpoint a fixed time after an append that none covers yet.

Counting events alone leaves a quiet log's last events unvouched for as long
as the writer lives, and a writer that is killed then leaves them unvouched
for good. The timer bounds that window in wall time: ``seconds`` after the
first append since the last checkpoint, it asks the store for one. It
sleeps while nothing is appended, so an idle log costs nothing.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from simulator.eventlog.errors import LogError

log = structlog.get_logger(__name__)


class CheckpointTimer:
    """Calls ``checkpoint`` ``seconds`` after ``appended()``; owned and stopped by its store.

    The store starts it when it opens and stops it (waiting for a checkpoint
    under way to finish, never cancelling one half-written) before it closes.
    """

    def __init__(
        self, seconds: float, checkpoint: Callable[[], Awaitable[None]], *, name: str
    ) -> None:
        self._seconds = seconds
        self._checkpoint = checkpoint
        self._name = name
        self._due = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start waiting for appends (a no-op when the timer is off, seconds == 0)."""
        if self._seconds > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    def appended(self) -> None:
        """Events were appended: a checkpoint is due ``seconds`` from the first such call."""
        self._due.set()

    async def stop(self) -> None:
        """Stop; a checkpoint under way is finished first."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._due.set()
        await task

    async def _run(self) -> None:
        while True:
            await self._due.wait()
            if self._stopping.is_set():
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._seconds):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            # Cleared before the checkpoint: an append during it is due again.
            self._due.clear()
            try:
                await self._checkpoint()
            except (LogError, OSError) as exc:
                # The next append (or close) tries again; the run goes on.
                log.warning("timed_checkpoint_failed", task=self._name, error=str(exc))
