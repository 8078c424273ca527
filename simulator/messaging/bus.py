"""What the umpire and the parties need from a connection to the broker.

`simulator.transport.Transport` provides it over MQTT; tests of pure logic
may hand in an in-memory hub, never as proof of a broker feature.
"""

from collections.abc import AsyncIterator
from typing import Protocol


class Incoming(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes: ...


class Bus(Protocol):
    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> None: ...

    async def subscribe(self, *filters: str, qos: int = 1) -> None: ...

    def messages(self) -> AsyncIterator[Incoming]: ...
