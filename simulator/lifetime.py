"""What a run leaves on the machine lives no longer than the run, even when the run is killed.

A run starts a private broker and keeps a working directory (password hashes,
the ACL, the broker's store) in the system's temporary directory. Killed with
SIGKILL, it ran no clean-up: its Mosquitto ran on and its directory stayed.
Now a child process is told by the kernel to die with its parent
(`PR_SET_PDEATHSIG`, through util-linux's `setpriv`), and each working directory names its owner, so
the next run sweeps the directories whose owner is gone.
"""

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import structlog

log = structlog.get_logger("simulator.lifetime")

OWNER_FILE = ".owner"


def dying_with_parent(argv: list[str]) -> list[str]:
    """`argv` run so that the child gets SIGKILL when this process dies, however it dies.

    util-linux's `setpriv --pdeathsig` sets it in the child and execs the
    command (same pid); no Python runs between fork and exec, as it would with
    `preexec_fn` (unsafe in a process with threads, as a run is).
    """
    setpriv = shutil.which("setpriv")
    if sys.platform != "linux" or setpriv is None:  # pragma: no cover - Linux has it
        return argv
    return [setpriv, "--pdeathsig", "KILL", "--", *argv]


def _started(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), or None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields follow the last ")".
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_alive(directory: Path) -> bool:
    try:
        pid_text, started = (directory / OWNER_FILE).read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        # No owner file: not ours to judge (an older version's, or being made now).
        return True
    if started == "None":
        return True  # written where there is no /proc to tell
    return _started(pid) == started


def sweep(prefix: str, base: Path | None = None) -> list[Path]:
    """Remove the working directories named `prefix…` whose owning process is gone."""
    root = Path(base or tempfile.gettempdir())
    removed = []
    for directory in root.glob(f"{prefix}*"):
        if directory.is_dir() and not _owner_alive(directory):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    if removed:
        log.info("stale_workdirs_removed", count=len(removed), prefix=prefix)
    return removed


@contextlib.contextmanager
def private_workdir(prefix: str, base: Path | None = None) -> Iterator[Path]:
    """A working directory only this process can read, removed when the block ends.

    Directories of the same kind left by processes that died are swept first.
    """
    sweep(prefix, base)
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    pid = os.getpid()
    (directory / OWNER_FILE).write_text(f"{pid} {_started(pid)}\n")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


__all__ = ["dying_with_parent", "private_workdir", "sweep"]
