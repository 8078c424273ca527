"""A TCP proxy between MQTT clients and a broker that misbehaves on command.

Brokers and networks lose, repeat, delay and reorder messages, and TCP
connections die in silence; the simulator's answer is the outbox, the
idempotent append and catch-up (DESIGN invariant 3). To show that answer
works, RELIABILITY.md's drills need each of those faults on demand, on one
machine, over loopback. `FaultProxy` sits on a port of its own and forwards
every connection to the broker, packet by packet: it reads the MQTT fixed
header (so it knows where each packet ends and which are PUBLISH), and the
CONNECT packet (so it knows which principal a connection belongs to, by
user name, and can aim a fault at one party or at the umpire).

On command it can:

- `pause()` / `resume()`: hold every packet (connections stay open);
- `blackhole(principal)`: swallow everything both ways and hide closes, so
  the client sees a half-open connection that only its keepalive can detect;
- `cut(principal)`: abort connections (the peer sees a reset);
- `refuse(True)`: close new connections at once (a broker that is gone);
- `Rule`s on single packets, aimed by direction, principal, packet type and
  topic: `drop` it, `ack_and_drop` it (the sender gets a PUBACK from the
  proxy, as from a broker that acknowledged and then lost it), `duplicate`
  it (sent again with the DUP flag), `delay` it (later packets overtake
  it: a reordering), or `cut` the connection right after passing it on (a
  cut between the two halves of a QoS 2 handshake: PUBREC through, PUBREL
  never).

`ProxiedBroker` wraps a started broker so that an exercise connects through
the proxy with the broker's own accounts. Speaks MQTT 3.1.1 and 5 framing;
QoS 2 acknowledgements are not faked (exercises publish at QoS 1; `simulator
load --qos 2` is where QoS 2 flows).
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

import structlog

from simulator.brokers.base import Broker
from simulator.transport import BrokerAddress, Credentials, MqttProtocol

__all__ = [
    "CONNECT",
    "PUBACK",
    "PUBLISH",
    "PUBREC",
    "Direction",
    "FaultProxy",
    "Link",
    "Packet",
    "ProxiedBroker",
    "Rule",
]

log = structlog.get_logger("simulator.faults")

# MQTT control packet types (the high nibble of the first byte).
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PINGREQ = 12
PINGRESP = 13

Direction = Literal["up", "down"]
"""`up`: from the client to the broker; `down`: from the broker to the client."""
Action = Literal["drop", "ack_and_drop", "duplicate", "delay", "cut"]


class MalformedPacket(ValueError):
    """Bytes that do not frame as MQTT; the proxy closes the connection."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One MQTT packet as it passed the proxy, with what a rule may match on."""

    raw: bytes
    kind: int
    flags: int
    topic: str | None = None
    qos: int = 0
    packet_id: int | None = None
    payload: bytes | None = None


@dataclass(eq=False)
class Rule:
    """A fault for matching packets: the first `count` (None: all) that match get `action`."""

    action: Action
    direction: Direction = "up"
    principal: str | None = None
    kind: int = PUBLISH
    topic: str | None = None
    match: Callable[[Packet], bool] | None = None
    count: int | None = 1
    seconds: float = 0.0
    hits: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.action == "delay" and self.seconds <= 0:
            raise ValueError("a delay rule needs seconds > 0")
        if self.count is not None and self.count < 1:
            raise ValueError("count must be at least 1 (or None for every match)")

    def applies(self, link: "Link", direction: Direction, packet: Packet) -> bool:
        if self.count is not None and self.hits >= self.count:
            return False
        if direction != self.direction or packet.kind != self.kind:
            return False
        if self.principal is not None and link.principal != self.principal:
            return False
        if self.topic is not None and packet.topic != self.topic:
            return False
        return self.match is None or self.match(packet)

    def hit(self) -> None:
        self.hits += 1
        if self.count is None or self.hits >= self.count:
            self.done.set()


# ------------------------------------------------------------------- framing


async def read_packet(reader: asyncio.StreamReader) -> bytes | None:
    """The next whole packet's bytes, or None at a clean end of stream."""
    first = await reader.read(1)
    if not first:
        return None
    header = bytearray(first)
    length = 0
    for shift in range(0, 28, 7):
        byte = (await reader.readexactly(1))[0]
        header.append(byte)
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    else:
        raise MalformedPacket("remaining length longer than 4 bytes")
    return bytes(header) + await reader.readexactly(length)


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 28, 7):
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
    raise MalformedPacket("variable byte integer longer than 4 bytes")


def _string(data: bytes, at: int) -> tuple[bytes, int]:
    size = int.from_bytes(data[at : at + 2], "big")
    end = at + 2 + size
    if end > len(data):
        raise MalformedPacket("string runs past the packet")
    return data[at + 2 : end], end


def _body(raw: bytes) -> bytes:
    _, at = _varint(raw, 1)
    return raw[at:]


def parse(raw: bytes, level: int) -> Packet:
    """A packet's type and flags, and for PUBLISH its topic, QoS, packet id and payload."""
    kind, flags = raw[0] >> 4, raw[0] & 0x0F
    if kind != PUBLISH:
        return Packet(raw, kind, flags)
    body = _body(raw)
    topic, at = _string(body, 0)
    qos = (flags >> 1) & 0x03
    packet_id = None
    if qos:
        packet_id = int.from_bytes(body[at : at + 2], "big")
        at += 2
    if level == 5:
        size, at = _varint(body, at)
        at += size
    return Packet(raw, kind, flags, topic.decode("utf-8", "replace"), qos, packet_id, body[at:])


def connect_identity(raw: bytes) -> tuple[int, str, str | None]:
    """(protocol level, client id, user name) of a CONNECT packet."""
    body = _body(raw)
    _, at = _string(body, 0)
    level, flags = body[at], body[at + 1]
    at += 4  # level, flags, keepalive
    if level == 5:
        size, at = _varint(body, at)
        at += size
    client_id, at = _string(body, at)
    if flags & 0x04:  # a will: (MQTT 5 properties,) topic, message
        if level == 5:
            size, at = _varint(body, at)
            at += size
        _, at = _string(body, at)
        _, at = _string(body, at)
    username = None
    if flags & 0x80:
        name, at = _string(body, at)
        username = name.decode("utf-8", "replace")
    return level, client_id.decode("utf-8", "replace"), username


def puback(packet_id: int) -> bytes:
    return bytes([PUBACK << 4, 2]) + packet_id.to_bytes(2, "big")


# --------------------------------------------------------------------- links


class Link:
    """One client connection through the proxy and its connection to the broker."""

    def __init__(self, client: asyncio.StreamWriter, broker: asyncio.StreamWriter) -> None:
        self.principal: str | None = None
        self.client_id: str | None = None
        self.level = 4
        self.blackholed = False
        # Packet ids of duplicated QoS 1 publishes, by direction: the receiver acknowledges
        # both copies, the sender expects one PUBACK (paho drops the connection over a
        # second), so the second acknowledgement is swallowed, as a broker would do.
        self.doubled: dict[Direction, set[int]] = {"up": set(), "down": set()}
        self.acked: dict[Direction, set[int]] = {"up": set(), "down": set()}
        self.writers: dict[Direction, asyncio.StreamWriter] = {"up": broker, "down": client}
        self.closed = asyncio.Event()

    def back(self, direction: Direction) -> asyncio.StreamWriter:
        """The writer towards the sender of a packet travelling in `direction`."""
        return self.writers["down" if direction == "up" else "up"]

    def cut(self) -> None:
        """Abort both sockets: each peer sees a reset, not a clean close."""
        for writer in self.writers.values():
            writer.transport.abort()
        self.closed.set()


class FaultProxy:
    """A misbehaving TCP proxy in front of an MQTT broker (see the module docstring)."""

    def __init__(self, upstream: BrokerAddress, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if upstream.tls:
            raise ValueError("the fault proxy reads MQTT packets, so it cannot carry TLS")
        self.upstream = upstream
        self.host = host
        self.port = port
        self.links: list[Link] = []
        self.rules: list[Rule] = []
        self.stats: Counter[str] = Counter()
        self.refusing = False
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._log = log.bind(upstream=upstream.display)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self.links):
            link.cut()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(list(self._handlers))
        if self._server is not None:
            await self._server.wait_closed()

    @property
    def address(self) -> BrokerAddress:
        """Where clients connect: the proxy's own port, with the broker's credentials if any."""
        return BrokerAddress(
            self.host, self.port, username=self.upstream.username, password=self.upstream.password
        )

    # -- commands

    def add(self, rule: Rule) -> Rule:
        self.rules.append(rule)
        return rule

    def pause(self) -> None:
        """Hold every packet where it is until `resume()`; connections stay open."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def refuse(self, refusing: bool = True) -> None:
        """While refusing, a new connection is closed as soon as it is accepted."""
        self.refusing = refusing

    def blackhole(self, principal: str | None = None, on: bool = True) -> int:
        """Swallow all traffic of the principal's live connections (all: None); returns how many."""
        chosen = self._chosen(principal)
        for link in chosen:
            link.blackholed = on
        return len(chosen)

    def cut(self, principal: str | None = None) -> int:
        """Abort the principal's live connections (all: None); returns how many."""
        chosen = self._chosen(principal)
        for link in chosen:
            link.cut()
        self.stats["cut"] += len(chosen)
        return len(chosen)

    def _chosen(self, principal: str | None) -> list[Link]:
        return [
            link
            for link in self.links
            if not link.closed.is_set() and (principal is None or link.principal == principal)
        ]

    # -- forwarding

    async def _serve(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            if self.refusing:
                self.stats["refused"] += 1
                client.transport.abort()
                return
            try:
                broker_reader, broker = await asyncio.open_connection(
                    self.upstream.host, self.upstream.port
                )
            except OSError:
                # The broker is down: the client sees what it would see without us.
                self.stats["upstream_unreachable"] += 1
                client.transport.abort()
                return
            link = Link(client, broker)
            self.links.append(link)
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._pump(link, "up", client_reader, group))
                    group.create_task(self._pump(link, "down", broker_reader, group))
            finally:
                link.cut()
                self.links.remove(link)
        except asyncio.CancelledError:
            # Only our own shutdown cancels a handler; ending quietly keeps asyncio's
            # server callback from logging the cancellation as an error.
            return
        finally:
            self._handlers.discard(task)

    async def _pump(
        self,
        link: Link,
        direction: Direction,
        reader: asyncio.StreamReader,
        group: asyncio.TaskGroup,
    ) -> None:
        while True:
            try:
                raw = await read_packet(reader)
            except (asyncio.IncompleteReadError, ConnectionError, MalformedPacket):
                raw = None
            if raw is None:
                if direction == "down" and link.blackholed:
                    # Hide the broker's close: the client must find out by itself.
                    return
                link.cut()
                return
            await self._flowing.wait()
            if link.blackholed:
                self.stats["blackholed"] += 1
                continue
            try:
                packet = self._inspect(link, direction, raw)
            except (MalformedPacket, IndexError):
                self._log.warning("proxy_unparsed_packet", direction=direction, size=len(raw))
                link.cut()
                return
            if self._second_ack(link, direction, raw):
                continue
            rule = next((r for r in self.rules if r.applies(link, direction, packet)), None)
            if rule is None:
                await self._write(link.writers[direction], raw)
                continue
            rule.hit()
            self.stats[rule.action] += 1
            self._log.info(
                "proxy_fault_applied",
                action=rule.action,
                direction=direction,
                principal=link.principal,
                topic=packet.topic,
            )
            if rule.action == "ack_and_drop":
                if packet.qos == 1 and packet.packet_id is not None:
                    await self._write(link.back(direction), puback(packet.packet_id))
            elif rule.action == "duplicate":
                await self._write(link.writers[direction], raw)
                if packet.qos == 1 and packet.packet_id is not None:
                    link.doubled[direction].add(packet.packet_id)
                again = bytes([raw[0] | 0x08]) + raw[1:] if packet.qos else raw
                await self._write(link.writers[direction], again)
            elif rule.action == "delay":
                group.create_task(self._later(link.writers[direction], raw, rule.seconds))
            elif rule.action == "cut":
                await self._write(link.writers[direction], raw)
                link.cut()
                return

    @staticmethod
    def _second_ack(link: Link, direction: Direction, raw: bytes) -> bool:
        """Whether `raw` is the second PUBACK for a publish the proxy duplicated."""
        if raw[0] >> 4 != PUBACK or len(raw) < 4:
            return False
        packet_id = int.from_bytes(raw[2:4], "big")
        towards: Direction = "down" if direction == "up" else "up"
        if packet_id not in link.doubled[towards]:
            return False
        if packet_id in link.acked[towards]:
            link.doubled[towards].discard(packet_id)
            link.acked[towards].discard(packet_id)
            return True
        link.acked[towards].add(packet_id)
        return False

    def _inspect(self, link: Link, direction: Direction, raw: bytes) -> Packet:
        if direction == "up" and raw[0] >> 4 == CONNECT:
            link.level, link.client_id, link.principal = connect_identity(raw)
        return parse(raw, link.level)

    async def _later(self, writer: asyncio.StreamWriter, raw: bytes, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._write(writer, raw)

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, raw: bytes) -> None:
        if writer.is_closing():
            return
        writer.write(raw)
        # A peer gone mid-write is the link's end, noticed by its reader.
        with contextlib.suppress(ConnectionError):
            await writer.drain()


class ProxiedBroker:
    """A started broker seen through a `FaultProxy`: same accounts, the proxy's address."""

    def __init__(self, broker: Broker, proxy: FaultProxy) -> None:
        self.inner = broker
        self.proxy = proxy

    @property
    def name(self) -> str:
        return f"{self.inner.name}+proxy"

    @property
    def address(self) -> BrokerAddress:
        return self.proxy.address

    @property
    def protocols(self) -> tuple[MqttProtocol, ...]:
        return self.inner.protocols

    @property
    def message_size_limit(self) -> int | None:
        return self.inner.message_size_limit

    @property
    def max_qos(self) -> int:
        return self.inner.max_qos

    def credentials(self, principal: str) -> Credentials:
        return self.inner.credentials(principal)

    async def __aenter__(self) -> Self:
        # The broker and the proxy have lifetimes of their own, owned by the caller.
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None
