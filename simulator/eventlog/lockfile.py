"""The writer's claim on a SQLite log: an advisory lock on a file beside it.

One process writes a log at a time (DESIGN invariant 2). A second writer on a
live log (a `resume` of a run still going) would read a head that the first
has since moved past, and append its own events among the first's. The
claim is an `flock` on `LOG.writer.lock`, held for the writer's whole life:
the kernel drops it when the holder exits however it exits, so a killed run
is resumed at once, with no lease to wait out. Readers take no claim.

The lock is on a file of its own, not on the database: SQLite's locks on the
database are POSIX record locks, which a process loses all at once when it
closes *any* descriptor of that file, ours included.
"""

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from simulator.eventlog.errors import LogBusyError, NotALogError, StorageError

LOCK_SUFFIX = ".writer.lock"


def lock_path(log: Path) -> Path:
    return log.with_name(log.name + LOCK_SUFFIX)


class WriterLock:
    """Hold `log` as its one writer while the block runs; LogBusyError when it is held.

    The lock file is removed on release, so a clean run leaves nothing beside its
    log; a killed one leaves it, and the next writer takes it over.
    """

    def __init__(self, log: Path) -> None:
        self.log = log
        self.path = lock_path(log)
        self._descriptor: int | None = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        if self.log.is_dir():
            raise NotALogError(str(self.log), "a directory, not a log file")
        try:
            # Where the log will be made: its directory is made as the log's is.
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                str(self.log), f"cannot make its directory ({exc.strerror})"
            ) from None
        while True:
            try:
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StorageError(
                    str(self.log), f"cannot make its writer's lock {self.path} ({exc.strerror})"
                ) from None
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(descriptor, 64, 0).decode("ascii", "replace").strip()
                os.close(descriptor)
                raise LogBusyError(str(self.log), holder or "pid unknown") from None
            # The holder we raced with may have removed the file (its release) after we
            # opened it: a lock on that unlinked file holds nothing, so open it again.
            if _same_file(descriptor, self.path):
                break
            os.close(descriptor)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()}".encode(), 0)
        self._descriptor = descriptor

    def release(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        # Removed while still locked: whoever opened it meanwhile finds it gone and retries.
        self.path.unlink(missing_ok=True)
        os.close(descriptor)


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
