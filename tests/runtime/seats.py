"""Playing an external seat from a test: `simulator run --external` and `simulator party`."""

import asyncio
import sys
from collections.abc import Callable

SIMULATOR = [sys.executable, "-m", "simulator"]


async def until(condition: Callable[[], bool], seconds: float) -> None:
    # Another process writes the file and the log: there is no event to await.
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def played_to_the_end(
    player: asyncio.subprocess.Process, run: asyncio.subprocess.Process, within: float
) -> str:
    """The seat's player (within `within` s) and then the run both end well, the end seen;
    what the run said on stderr."""
    out, err = await asyncio.wait_for(player.communicate(), within)
    assert player.returncode == 0, err.decode()[-2000:]
    assert b"the exercise ended" in out
    _, errors = await asyncio.wait_for(run.communicate(), 60)
    assert run.returncode == 0, errors.decode()[-2000:]
    return errors.decode()
