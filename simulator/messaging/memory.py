"""An in-memory `Bus` (simulator.messaging.bus) for unit tests of pure logic, routed like MQTT.

Never proof of a broker feature: there is no network, session, QoS
handshake or persistence here, and nothing is lost unless a test says so.
What a broker must do (ACLs, retained messages, redelivery, order) is
proven against the embedded broker and Mosquitto in tests/transport; this
hub only lets logic that talks to a `Bus` run without one.

`MemoryHub.connect(client)` gives one client's `MemoryBus`. The hub routes
as a broker would:

- topic filters with `+` (exactly one level, an empty one too) and `#` (its
  parent level and everything below: `a/#` matches `a`); a filter that
  starts with a wildcard does not match a `$` topic;
- a message goes once to each subscribed client however many of its filters
  match, at the highest QoS among them capped at the publish's QoS
  (Mosquitto sends one copy per matching subscription: code under test must
  not count on either);
- each client receives in the order the hub routed (per-client FIFO);
- a retained message is kept per topic (an empty payload clears it) and
  sent, flagged `retain`, to each later subscription it matches; live
  deliveries are never flagged;
- an optional ACL per client (`Access`; `simulator.brokers.access.Grants`
  is one): a publish outside its `write` filters is dropped silently, as
  Mosquitto drops one after acknowledging it; a subscription outside its
  `read` filters is granted but receives nothing the ACL does not let the
  client read, again as Mosquitto does (amqtt refuses the subscription).

For tests, the hub records what went through (`published`), what the ACL
dropped (`denied`) and what a `drop` rule lost (`lost`); `drop` loses
deliveries on purpose so that a test can show a resend or a catch-up.

Queues are unbounded: a client that never reads only makes its queue grow
(the real transport buffers without bound too, and warns past
`max_buffered`). `publish` returns once the message is queued for every
current subscriber, then yields to the event loop once, as a round trip to
a broker would. `close` stops deliveries; what was queued can still be read,
then `messages()` ends, as with `simulator.transport.Transport`.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

__all__ = [
    "Access",
    "Delivered",
    "Loss",
    "MemoryBus",
    "MemoryHub",
    "Published",
    "check_filter",
    "check_topic",
    "matches",
]

_QOS_LEVELS = (0, 1, 2)


def check_topic(topic: str) -> str:
    """`topic` if a client may publish to it: not empty, no wildcard, no NUL."""
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise ValueError(f"{topic!r} is not a topic name: not empty, without '+', '#' or NUL")
    return topic


def check_filter(topic_filter: str) -> str:
    """`topic_filter` if it is a valid MQTT filter: wildcards fill whole levels, `#` only last."""
    if not topic_filter or "\x00" in topic_filter:
        raise ValueError(f"{topic_filter!r} is not a topic filter: not empty, without NUL")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"{topic_filter!r}: '#' must be a whole level, and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"{topic_filter!r}: '+' must be a whole level")
    return topic_filter


def matches(topic_filter: str, topic: str) -> bool:
    """Whether `topic` matches the (valid) `topic_filter`, as MQTT 3.1.1 section 4.7 says."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    wanted = topic_filter.split("/")
    levels = topic.split("/")
    for i, level in enumerate(wanted):
        if level == "#":
            return True
        if i == len(levels) or level not in ("+", levels[i]):
            return False
    return len(wanted) == len(levels)


def _check_qos(qos: int) -> int:
    if qos not in _QOS_LEVELS:
        raise ValueError(f"QoS must be 0, 1 or 2, not {qos!r}")
    return qos


class Access(Protocol):
    """Topic filters a client may publish to (`write`) and receive from (`read`)."""

    @property
    def write(self) -> Sequence[str]: ...

    @property
    def read(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class Published:
    """One publish the hub received from a client."""

    sender: str
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message as a client receives it: a `simulator.messaging.bus.Incoming`."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


# Whether to lose a delivery: called with the receiving client and the message.
Loss = Callable[[str, Published], bool]


@dataclass
class _LossRule:
    predicate: Loss
    remaining: int | None


@dataclass(eq=False)
class _Session:
    """A connected client's state, owned by the hub."""

    client: str
    access: Access | None
    subscriptions: dict[str, int] = field(default_factory=dict)
    inbox: deque[Delivered] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    def granted(self, topic: str) -> int | None:
        """The highest QoS among this client's filters matching `topic`; None if none matches."""
        return max((q for f, q in self.subscriptions.items() if matches(f, topic)), default=None)

    def may_write(self, topic: str) -> bool:
        return self.access is None or any(matches(f, topic) for f in self.access.write)

    def may_read(self, topic: str) -> bool:
        return self.access is None or any(matches(f, topic) for f in self.access.read)


class MemoryHub:
    """Connects many in-memory clients as a broker would, and records what went through."""

    def __init__(self) -> None:
        self.published: list[Published] = []
        self.denied: list[Published] = []
        self.lost: list[tuple[str, Published]] = []
        self._sessions: dict[str, _Session] = {}
        # Insertion order is the order of the last retained publish per topic.
        self._retained: dict[str, Published] = {}
        self._losses: list[_LossRule] = []

    def connect(self, client: str, *, access: Access | None = None) -> "MemoryBus":
        """A new client; `access` limits what it may publish and receive (None: everything)."""
        if not client:
            raise ValueError("a client needs a name")
        if client in self._sessions:
            raise ValueError(f"client {client!r} is already connected")
        session = _Session(client, access)
        self._sessions[client] = session
        return MemoryBus(self, session)

    def drop(self, predicate: Loss, *, times: int | None = 1) -> None:
        """Lose the next `times` deliveries (None: every one) where `predicate(client, message)`.

        A delivery is one message to one client, so a rule matching a message
        that two clients receive loses it for both only if `times` allows two.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, or None for always, not {times!r}")
        self._losses.append(_LossRule(predicate, times))

    # -- what the buses call

    def _publish(self, session: _Session, message: Published) -> None:
        if not session.may_write(message.topic):
            self.denied.append(message)
            return
        self.published.append(message)
        if message.retain:
            self._retained.pop(message.topic, None)
            if message.payload:
                self._retained[message.topic] = message
        for receiver in list(self._sessions.values()):
            qos = receiver.granted(message.topic)
            if qos is not None:
                self._deliver(receiver, message, min(qos, message.qos), retain=False)

    def _subscribe(self, session: _Session, filters: Sequence[str], qos: int) -> None:
        for topic_filter in filters:
            session.subscriptions[topic_filter] = qos
        for message in list(self._retained.values()):
            if any(matches(f, message.topic) for f in filters):
                self._deliver(session, message, min(qos, message.qos), retain=True)

    def _disconnect(self, session: _Session) -> None:
        if self._sessions.get(session.client) is session:
            del self._sessions[session.client]
        session.closed = True
        session.arrived.set()

    def _deliver(self, session: _Session, message: Published, qos: int, *, retain: bool) -> None:
        if not session.may_read(message.topic):
            return
        for rule in self._losses:
            if rule.remaining != 0 and rule.predicate(session.client, message):
                if rule.remaining is not None:
                    rule.remaining -= 1
                self.lost.append((session.client, message))
                return
        session.inbox.append(Delivered(message.topic, message.payload, qos, retain))
        session.arrived.set()


class MemoryBus:
    """One client's connection to a `MemoryHub`; a `simulator.messaging.bus.Bus`.

    Use as an async context manager, or call `close`. `messages()` is meant
    for one consumer, as `Transport.messages()` is: two iterators would
    split one queue between them.
    """

    def __init__(self, hub: MemoryHub, session: _Session) -> None:
        self._hub = hub
        self._session = session

    @property
    def client(self) -> str:
        return self._session.client

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self._check_open()
        _check_qos(qos)
        if not isinstance(payload, bytes | bytearray):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        message = Published(self.client, check_topic(topic), bytes(payload), qos, retain)
        self._hub._publish(self._session, message)
        await asyncio.sleep(0)

    async def subscribe(self, *filters: str, qos: int = 1) -> None:
        self._check_open()
        if not filters:
            raise ValueError("subscribe needs at least one topic filter")
        _check_qos(qos)
        self._hub._subscribe(self._session, [check_filter(f) for f in filters], qos)
        await asyncio.sleep(0)

    def messages(self) -> AsyncIterator[Delivered]:
        """Everything received, in arrival order; ends once the bus is closed and drained."""
        return _Inbox(self._session)

    async def close(self) -> None:
        self._hub._disconnect(self._session)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._session.closed:
            raise RuntimeError(f"client {self.client!r} is closed")


class _Inbox:
    """The async iterator behind `MemoryBus.messages()`."""

    def __init__(self, session: _Session) -> None:
        self._session = session

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Delivered:
        session = self._session
        while not session.inbox:
            if session.closed:
                raise StopAsyncIteration
            # Cleared only with the queue empty and nothing awaited since the
            # check, so no arrival is missed.
            session.arrived.clear()
            await session.arrived.wait()
        return session.inbox.popleft()
