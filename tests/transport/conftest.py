"""Every transport test starts from structlog's defaults, and an async one checks that it
left nothing behind: no tasks, no event loop errors."""

import asyncio
import gc
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog


@pytest.fixture(autouse=True)
def default_structlog() -> Iterator[None]:
    """structlog as shipped, whatever an earlier test configured.

    `simulator run` configures structlog once per process, filtering below
    WARNING and printing to the sys.stderr of that moment; after a CLI test
    that stream is pytest's, closed, and the level hides the info events
    these tests assert on.
    """
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


@pytest.fixture(autouse=True)
async def leaves_nothing_running(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Set up first and torn down last: brokers and transports have stopped by then."""
    if not inspect.iscoroutinefunction(request.function):
        yield  # a plain test starts no tasks
        return
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    before = asyncio.all_tasks()
    try:
        yield
        await asyncio.sleep(0)  # let cancellations scheduled at teardown land
        gc.collect()  # "Task was destroyed but it is pending" is reported on collection
        stray = asyncio.all_tasks() - before - {asyncio.current_task()}
        assert not stray, f"tasks left running: {stray}"
        assert not errors, f"event loop errors: {[e.get('message') for e in errors]}"
    finally:
        loop.set_exception_handler(previous)
