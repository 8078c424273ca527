"""Connecting principals to a test's broker, and reading what they received with time limits."""

import asyncio
import contextlib
import random
from typing import Any

import pytest

from simulator.brokers import Broker, transport_for
from simulator.messaging.topics import Topics
from simulator.transport import (
    Backoff,
    BrokerRefused,
    Credentials,
    MqttProtocol,
    Received,
    SessionSettings,
    Transport,
    client_id_for,
)

PARTIES = ("alpha", "bravo")
# Quick retries keep reconnect tests short; the cap still bounds a storm.
TEST_BACKOFF = Backoff(initial=0.02, maximum=0.5)


class Connector:
    """Makes transports for the principals of a test's broker; closes what it opened."""

    def __init__(self, stack: contextlib.AsyncExitStack, topics: Topics) -> None:
        self._stack = stack
        self.topics = topics
        # Jitter only: a fixed seed keeps the backoff sequence reproducible.
        self.rng = random.Random(4)

    def transport(
        self,
        broker: Broker,
        principal: str,
        *,
        protocol: MqttProtocol = "3.1.1",
        persistent: bool = True,
        purpose: str = "",
        **options: Any,
    ) -> Transport:
        """A transport not yet entered, for tests that open and close it themselves."""
        session = SessionSettings(
            client_id_for(self.topics.exercise, principal, purpose),
            protocol=protocol,
            persistent=persistent,
        )
        options.setdefault("backoff", TEST_BACKOFF)
        return transport_for(broker, principal, session, rng=self.rng, **options)

    async def __call__(
        self,
        broker: Broker,
        principal: str,
        *,
        protocol: MqttProtocol = "3.1.1",
        persistent: bool = True,
        purpose: str = "",
        **options: Any,
    ) -> Transport:
        """A connected transport, closed when the test ends."""
        transport = self.transport(
            broker,
            principal,
            protocol=protocol,
            persistent=persistent,
            purpose=purpose,
            **options,
        )
        return await self.enter(transport)

    async def enter(self, transport: Transport) -> Transport:
        """Enter a transport made by hand; it is closed when the test ends."""
        return await self._stack.enter_async_context(transport)


# Anonymous, a party's name with a wrong password, and a name the broker does not know.
BAD_CREDENTIALS = pytest.mark.parametrize(
    "credentials",
    [None, Credentials("alpha", "not-the-password"), Credentials("mallory", "guess")],
    ids=["anonymous", "wrong-password", "unknown-user"],
)


async def assert_refused(
    broker: Broker, connect: Connector, credentials: Credentials | None
) -> None:
    """A client with these credentials (None: none at all) is refused at CONNECT."""
    stranger = Transport(
        broker.address,
        connect.transport(broker, "alpha", purpose="stranger").session,
        rng=connect.rng,
        credentials=credentials,
        connect_timeout=3,
    )
    with pytest.raises(BrokerRefused, match="not authorised"):
        async with stranger:
            pass


async def receive(transport: Transport, count: int, within: float = 5.0) -> list[Received]:
    """The next `count` messages; TimeoutError (with what did arrive) if they take longer."""
    got: list[Received] = []
    try:
        async with asyncio.timeout(within):
            async for message in transport.messages():
                got.append(message)
                if len(got) == count:
                    break
    except TimeoutError:
        raise TimeoutError(f"{len(got)} of {count} messages within {within} s: {got}") from None
    return got


async def receive_all(
    transport: Transport, payloads: set[bytes], within: float = 10.0
) -> list[Received]:
    """Messages until every payload in `payloads` has arrived (duplicates kept, in order)."""
    got: list[Received] = []
    missing = set(payloads)
    try:
        async with asyncio.timeout(within):
            async for message in transport.messages():
                got.append(message)
                missing.discard(message.payload)
                if not missing:
                    break
    except TimeoutError:
        raise TimeoutError(f"still missing after {within} s: {sorted(missing)}") from None
    return got


async def quiet(transport: Transport, within: float = 0.3) -> list[Received]:
    """Whatever arrives in the next `within` seconds (a test expecting nothing asserts [])."""
    got: list[Received] = []
    try:
        async with asyncio.timeout(within):
            async for message in transport.messages():
                got.append(message)
    except TimeoutError:
        pass
    return got
