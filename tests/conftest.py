"""Broker fixtures for the whole suite.

`embedded_broker` and `mosquitto_broker` each start a broker of their own
for one test: on a free 127.0.0.1 port, in the test's temp dir, with a
unique exercise id and fresh accounts for the umpire, observer, controller
and the parties in `PARTIES`. `broker` runs a test once on each. `connect`
makes transports for principals of such a broker and closes them at
teardown. Mosquitto is required, not optional: without it the Mosquitto
tests fail and say how to install it.
"""

import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from simulator.brokers import Broker, EmbeddedBroker, MosquittoBroker, exercise_principals
from simulator.brokers.mosquitto import DEFAULT_BINARY
from simulator.messaging.topics import Topics
from tests.transport.helpers import PARTIES, Connector


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults: a CLI test configures it once."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _private_keys(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoint signing keys go to this test session's temp dir, never the user's home."""
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path_factory.getbasetemp() / "keys"))


@pytest.fixture
def topics() -> Topics:
    """Topics of an exercise no other test uses."""
    return Topics(f"x{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def embedded_broker(topics: Topics, tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    """amqtt in this test's event loop, authentication and ACL on."""
    async with EmbeddedBroker(
        topics, exercise_principals(PARTIES), workdir=tmp_path / "embedded"
    ) as broker:
        yield broker


@pytest.fixture
async def mosquitto_broker(topics: Topics, tmp_path: Path) -> AsyncIterator[MosquittoBroker]:
    """A private Mosquitto process, stopped (and if need be killed) by its pid at teardown."""
    if not DEFAULT_BINARY.is_file():
        pytest.fail(
            f"{DEFAULT_BINARY} is missing: the broker tests need a real Mosquitto. "
            "Install it with `apt-get install mosquitto` (.ci/run does)."
        )
    broker = MosquittoBroker(topics, exercise_principals(PARTIES), workdir=tmp_path / "mosquitto")
    try:
        async with broker:
            yield broker
    finally:
        # A test may have restarted it (new pid); whatever runs now must go.
        pid = broker.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            await broker.kill()


@pytest.fixture(params=["embedded", "mosquitto"])
def broker(request: pytest.FixtureRequest) -> Broker:
    """The embedded broker, then Mosquitto: a contract test runs on both."""
    name = "embedded_broker" if request.param == "embedded" else "mosquitto_broker"
    chosen: Broker = request.getfixturevalue(name)
    return chosen


@pytest.fixture
async def connect(topics: Topics) -> AsyncIterator[Connector]:
    """`await connect(broker, principal)`: a connected Transport for that principal."""
    async with contextlib.AsyncExitStack() as stack:
        yield Connector(stack, topics)
