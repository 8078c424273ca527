"""TLS brokers for the security tests: the real embedded broker and a private Mosquitto.

Each starts on a free loopback port in the test's temp dir with fresh
accounts and, unless a test passes its own, a fresh CA and server
certificate (`simulator.brokers.tls.generate_tls`).
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.brokers import Broker, EmbeddedBroker, MosquittoBroker, exercise_principals
from simulator.brokers.mosquitto import DEFAULT_BINARY
from simulator.brokers.tls import TlsFiles, generate_tls
from simulator.context import wall_now
from simulator.messaging.topics import Topics
from tests.transport.helpers import Connector

# The parties of tests/protocol/builders.py, so that its messages and agreement fit.
SECURITY_PARTIES = ("alpha", "beta", "gamma")

BrokerFactory = Callable[[TlsFiles | None], contextlib.AbstractAsyncContextManager[Broker]]


@pytest.fixture(params=["embedded", "mosquitto"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    """Each test runs on the embedded broker, then on Mosquitto."""
    kind: str = request.param
    if kind == "mosquitto" and not DEFAULT_BINARY.is_file():
        pytest.fail(f"{DEFAULT_BINARY} is missing: install it with `apt-get install mosquitto`")
    return kind


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    """A fresh CA and a loopback server certificate, valid now."""
    return generate_tls(tmp_path / "tls", now=wall_now())


@pytest.fixture
def start(broker_kind: str, topics: Topics, tmp_path: Path) -> BrokerFactory:
    """`async with start(tls) as broker`: a broker of this test's kind, TLS-only with `tls`."""

    @contextlib.asynccontextmanager
    async def run(tls: TlsFiles | None) -> AsyncIterator[Broker]:
        accounts = exercise_principals(SECURITY_PARTIES)
        workdir = tmp_path / broker_kind
        options: dict[str, Any] = {"workdir": workdir, "tls": tls}
        broker: Broker = (
            EmbeddedBroker(topics, accounts, **options)
            if broker_kind == "embedded"
            else MosquittoBroker(topics, accounts, **options)
        )
        async with broker:
            yield broker

    return run


@pytest.fixture
async def secure_broker(start: BrokerFactory, tls_files: TlsFiles) -> AsyncIterator[Broker]:
    """A TLS-only broker of this test's kind."""
    async with start(tls_files) as broker:
        yield broker


@pytest.fixture
async def connect(topics: Topics) -> AsyncIterator[Connector]:
    """`await connect(broker, principal)`: a connected Transport for that principal."""
    async with contextlib.AsyncExitStack() as stack:
        yield Connector(stack, topics)
