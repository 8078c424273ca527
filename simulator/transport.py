"""The MQTT connection of one principal: the only module that imports aiomqtt.

aiomqtt 2.x (pinned below 3: aiomqtt 3 speaks MQTT 5 only, the embedded
broker 3.1.1 only) neither reconnects by itself nor keeps subscriptions
across connections, and it acknowledges a QoS 1 message as soon as it is
queued, before our code has seen it. `Transport` wraps it so that callers get:

- a supervisor that reconnects with bounded exponential backoff and full
  jitter (from an injected `random.Random`), re-subscribes its filters and
  sets TCP_NODELAY after every connect;
- `publish` that waits for a connection (up to a timeout, then
  `BrokerUnavailable`) and, at QoS >= 1, returns only after the broker's
  PUBACK/PUBCOMP. A publish cut off by a disconnect is sent again on the
  next connection (up to 3), so delivery is at-least-once: receivers
  deduplicate by message id (DESIGN invariant 3);
- `messages()`, one async iterator over everything received, across
  reconnects, in arrival order.

Receiving, precisely: paho hands each message straight to the transport's
buffer, on the event loop, and the consumer reads from it. The buffer is
unbounded on purpose, as aiomqtt's own queue was: a bounded one drops
messages already acknowledged, and pausing the socket instead makes the
broker queue them, and drop them past its queue limit (RELIABILITY.md). So
a slow consumer never loses a message it was sent; what the broker has
delivered is held in memory until the consumer takes it (a warning says
when the backlog passes `max_buffered`); a receiver that crashes loses what
it held, and the application recovers it by resend or catch-up (DESIGN
invariant 3).

Publishing, precisely: a publish on an open connection goes to paho
directly and waits for its PUBACK/PUBCOMP on a future of its own, resolved
from paho's callback or failed when the connection drops. aiomqtt's publish
costs a task, a `wait_for` and a walk over every pending call per message,
which was most of a load run's transport time (2.5x fewer publishes per
second, measured here); its path stays for publishes that must wait for,
or retry on, a connection.

Session settings are built by one pure function, `session_options`, which
refuses combinations that silently lose offline messages (RELIABILITY
item 2).

aiomqtt 2.x lacks four things we need, so four small helpers reach into
it, each saying why: `_paho_socket` (the socket, for TCP_NODELAY),
`_disconnection` (learning at once that a connection is gone), `_connect`
(not leaking a socket when a connect fails) and `_Link` (paho's callbacks,
for the cheap publish and receive paths above). aiomqtt is pinned below 3,
and the tests exercise all four.
"""

import asyncio
import contextlib
import hashlib
import os
import random
import re
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

import aiomqtt
import structlog
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from simulator.errors import BrokerError, InputError

__all__ = [
    "CLIENT_ID_MAX_LENGTH",
    "DEFAULT_SESSION_EXPIRY",
    "PROTOCOLS",
    "Backoff",
    "BrokerAddress",
    "BrokerRefused",
    "BrokerUnavailable",
    "BrokerUrlError",
    "ConnectionState",
    "Credentials",
    "MqttProtocol",
    "PayloadTooLarge",
    "Received",
    "SessionSettings",
    "SessionSettingsError",
    "SubscriptionRefused",
    "Transport",
    "check_client_id",
    "client_id_for",
    "session_options",
]

MqttProtocol = Literal["3.1.1", "5"]
PROTOCOLS: tuple[MqttProtocol, ...] = ("3.1.1", "5")

# MQTT 3.1.1 (section 3.1.3.1) obliges a broker to accept client ids of 1-23
# characters from [0-9a-zA-Z]; longer ids and other characters are allowed
# but not guaranteed. We add `_` and `-` (every broker we target accepts
# them, and party ids use them) and keep the guaranteed length.
CLIENT_ID_MAX_LENGTH = 23
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,23}")
# Long enough to ride out a broker restart or a laptop's sleep; short enough
# that an abandoned exercise does not hold queues for ever.
DEFAULT_SESSION_EXPIRY = 24 * 3600
_MAX_SESSION_EXPIRY = 0xFFFFFFFF  # MQTT 5 four-byte integer; this value means "never"

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
USERNAME_ENV = "SIMULATOR_MQTT_USERNAME"
PASSWORD_ENV = "SIMULATOR_MQTT_PASSWORD"

# CONNACK codes meaning "your credentials are not accepted", as MQTT 3.1.1
# return codes (4, 5) and MQTT 5 reason codes (0x86, 0x87).
_AUTH_REFUSED = frozenset({4, 5, 0x86, 0x87})
_PROTOCOL_REFUSED = frozenset({1, 0x84})
_SUBACK_FAILURE = 0x80  # the lowest failure code in both 3.1.1 and 5
# What OpenSSL says (through aiomqtt's MqttError) when it refuses a server certificate.
_CERTIFICATE_REFUSED = "CERTIFICATE_VERIFY_FAILED"


# --------------------------------------------------------------------- errors


class BrokerUnavailable(BrokerError):
    """The broker could not be reached, or kept dropping the connection, within the time allowed."""

    def __init__(
        self, address: "BrokerAddress", action: str, timeout: float, detail: str = ""
    ) -> None:
        self.address = address
        self.action = action
        self.timeout = timeout
        why = f": {detail}" if detail else f" within {timeout:g} s"
        super().__init__(f"broker {address.display} unavailable: could not {action}{why}")


class PayloadTooLarge(BrokerError, ValueError):
    """A payload over the broker's size limit, refused before it was sent.

    Sent anyway, it would vanish: at MQTT 3.1.1 Mosquitto acknowledges it and
    drops it; at MQTT 5 the connection breaks (see `Transport.publish`).
    """

    def __init__(self, topic: str, size: int, limit: int) -> None:
        self.topic = topic
        self.size = size
        self.limit = limit
        super().__init__(
            f"payload of {size} bytes for {topic!r} exceeds the broker's limit of {limit} bytes"
        )


class BrokerRefused(BrokerError):
    """The broker answered CONNECT with a refusal (credentials, protocol version)."""

    def __init__(self, address: "BrokerAddress", client_id: str, reason: str) -> None:
        self.address = address
        self.client_id = client_id
        self.reason = reason
        super().__init__(f"broker {address.display} refused client {client_id!r}: {reason}")


class SubscriptionRefused(BrokerError):
    """The broker refused a subscription (usually its ACL)."""

    def __init__(self, client_id: str, filters: tuple[str, ...]) -> None:
        self.client_id = client_id
        self.filters = filters
        super().__init__(f"broker refused subscription of client {client_id!r} to {list(filters)}")


class BrokerUrlError(InputError):
    """A broker URL that cannot be used."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        self.problem = problem
        super().__init__(f"broker URL {_redact(url)!r}: {problem}")


class SessionSettingsError(InputError):
    """Session settings that would lose messages or that a broker may refuse."""


# ------------------------------------------------------------------ addresses


class Credentials(NamedTuple):
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where a broker listens, how to secure the connection, and optional credentials.

    Credentials here are the URL's (or the environment's); brokers that hand
    out one account per principal pass credentials to `Transport` instead.
    """

    host: str
    port: int
    tls: bool = False
    ca_file: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.host:
            raise BrokerUrlError(self.display, "no host")
        if not 0 < self.port < 65536:
            raise BrokerUrlError(self.display, f"port {self.port} out of range")
        if (self.certfile is None) != (self.keyfile is None):
            raise BrokerUrlError(
                self.display, "a client certificate needs both certfile and keyfile"
            )
        if not self.tls and (self.ca_file or self.certfile):
            raise BrokerUrlError(self.display, "certificate files given without TLS (use mqtts://)")

    @classmethod
    def from_url(cls, url: str, *, environ: Mapping[str, str] | None = None) -> Self:
        """Parse `mqtt://[user:pass@]host[:port]` or `mqtts://...[?ca_file=&certfile=&keyfile=]`.

        Credentials in the URL win; without them, `SIMULATOR_MQTT_USERNAME`
        and `SIMULATOR_MQTT_PASSWORD` from `environ` (default: the process
        environment) are used.
        """
        env = os.environ if environ is None else environ
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise BrokerUrlError(url, str(exc)) from None
        if parts.scheme not in _DEFAULT_PORTS:
            raise BrokerUrlError(url, "scheme must be mqtt:// or mqtts://")
        if parts.path not in ("", "/") or parts.fragment:
            raise BrokerUrlError(url, "a broker URL has no path or fragment")
        query = parse_qs(parts.query, strict_parsing=False)
        unknown = set(query) - {"ca_file", "certfile", "keyfile"}
        if unknown:
            raise BrokerUrlError(url, f"unknown parameters {sorted(unknown)}")

        def one(name: str) -> Path | None:
            values = query.get(name)
            return Path(values[-1]) if values else None

        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if username is None:
            username = env.get(USERNAME_ENV) or None
            password = env.get(PASSWORD_ENV) if username is not None else None
        return cls(
            host=parts.hostname or "",
            port=port if port is not None else _DEFAULT_PORTS[parts.scheme],
            tls=parts.scheme == "mqtts",
            ca_file=one("ca_file"),
            certfile=one("certfile"),
            keyfile=one("keyfile"),
            username=username,
            password=password,
        )

    @property
    def credentials(self) -> Credentials | None:
        if self.username is None:
            return None
        return Credentials(self.username, self.password or "")

    @property
    def display(self) -> str:
        """The address as a URL without the password, for messages and logs."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"


def _redact(url: str) -> str:
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


# ------------------------------------------------------------------- sessions


def client_id_for(exercise: str, principal: str, purpose: str = "") -> str:
    """A short, stable MQTT client id for a principal of an exercise.

    `{exercise}-{principal}[-{purpose}]` when that fits in 23 characters;
    otherwise a readable prefix plus 8 hex digits of a SHA-256 over the full
    triple, so distinct principals keep distinct ids and the same principal
    gets the same id on every run (which a persistent session needs).
    Inputs are topic-safe ids ([a-z0-9_-]); anything else is refused.
    """
    parts = [exercise, principal] + ([purpose] if purpose else [])
    for part in parts:
        if re.fullmatch(r"[A-Za-z0-9_-]+", part) is None:
            raise SessionSettingsError(f"{part!r} cannot be part of a client id")
    plain = "-".join(parts)
    if len(plain) <= CLIENT_ID_MAX_LENGTH:
        return plain
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]
    return f"{exercise[:6]}-{principal[:7]}-{digest}"


def check_client_id(client_id: str) -> str:
    if not isinstance(client_id, str) or _CLIENT_ID.fullmatch(client_id) is None:
        raise SessionSettingsError(
            f"client id {client_id!r} must be 1-{CLIENT_ID_MAX_LENGTH} characters of "
            "[A-Za-z0-9_-] (MQTT 3.1.1 guarantees no more); derive one with client_id_for()"
        )
    return client_id


def session_options(
    client_id: str,
    protocol: MqttProtocol,
    *,
    persistent: bool,
    session_expiry: int | None = None,
    require_persistent: bool = False,
) -> dict[str, Any]:
    """The aiomqtt.Client keyword arguments for a session, or an error if they would lose messages.

    Only a persistent session keeps QoS 1 messages for a subscriber that is
    offline: MQTT 3.1.1 `clean_session=False`; MQTT 5 `clean_start=False`
    plus a Session Expiry Interval > 0 (with expiry 0, the MQTT 5 default,
    the session ends at disconnect whatever clean_start says). Refused:
    an invalid client id; `require_persistent` with a clean session; an
    MQTT 5 persistent session without a positive expiry; an expiry on a
    clean session. On MQTT 3.1.1 `session_expiry` is ignored: the broker
    decides (Mosquitto's `persistent_client_expiration`).
    """
    check_client_id(client_id)
    if protocol not in PROTOCOLS:
        raise SessionSettingsError(f"MQTT protocol {protocol!r} is not one of {list(PROTOCOLS)}")
    if require_persistent and not persistent:
        raise SessionSettingsError(
            f"client {client_id!r} needs a persistent session (messages sent while it is "
            "offline must be kept), but a clean session was configured"
        )
    if not persistent and session_expiry:
        raise SessionSettingsError(
            f"client {client_id!r}: a clean session has no expiry (got {session_expiry})"
        )
    options: dict[str, Any] = {"identifier": client_id}
    if protocol == "3.1.1":
        options["protocol"] = aiomqtt.ProtocolVersion.V311
        options["clean_session"] = not persistent
        return options
    options["protocol"] = aiomqtt.ProtocolVersion.V5
    if not persistent:
        # Explicit, because aiomqtt's default (clean only on the first connect
        # of a Client object) means nothing to a transport that makes a new
        # Client per connection.
        options["clean_start"] = True
        return options
    if session_expiry is None or not 0 < session_expiry <= _MAX_SESSION_EXPIRY:
        raise SessionSettingsError(
            f"client {client_id!r}: an MQTT 5 persistent session needs a session expiry of "
            f"1..{_MAX_SESSION_EXPIRY} s (got {session_expiry}); with 0 the broker drops the "
            "session, and the messages queued for it, at disconnect"
        )
    # paho ships no type hints for Properties; it is a plain attribute bag.
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = session_expiry
    options["clean_start"] = False
    options["properties"] = properties
    return options


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """How one client connects: its id, protocol and whether its session outlives a connection.

    Validated on construction by `session_options`, so a bad combination
    fails where it is written, not at the first reconnect.
    """

    client_id: str
    protocol: MqttProtocol = "3.1.1"
    persistent: bool = True
    session_expiry: int | None = DEFAULT_SESSION_EXPIRY
    require_persistent: bool = False

    def __post_init__(self) -> None:
        self.client_options()

    def client_options(self) -> dict[str, Any]:
        return session_options(
            self.client_id,
            self.protocol,
            persistent=self.persistent,
            session_expiry=self.session_expiry if self.persistent else None,
            require_persistent=self.require_persistent,
        )


# -------------------------------------------------------------------- backoff


@dataclass(frozen=True, slots=True)
class Backoff:
    """Bounded exponential backoff with full jitter.

    Attempt n waits a uniform random time in [0, min(maximum, initial * factor**n)]:
    full jitter spreads a crowd of clients that lost the same broker, so they
    do not all come back in the same instant. The attempt counter restarts
    only after a connection has stayed up for `stable_after` seconds, so a
    connection that is dropped right after CONNACK (a take-over by another
    process with the same client id) still backs off.
    """

    initial: float = 0.05
    maximum: float = 5.0
    factor: float = 2.0
    stable_after: float = 10.0

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.maximum and self.factor >= 1 and self.stable_after >= 0):
            raise ValueError(f"inconsistent backoff {self!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        cap = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return rng.uniform(0, cap)


# --------------------------------------------------------------- the transport


class Received(NamedTuple):
    """A message as the broker delivered it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class ConnectionState:
    """Read-only view of a transport's connection, for callers and tests to wait on."""

    def __init__(self) -> None:
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()
        self._connections = 0

    def is_set(self) -> bool:
        """True while connected (after CONNACK, subscriptions restored)."""
        return self._up.is_set()

    async def wait(self) -> None:
        """Return once connected."""
        await self._up.wait()

    async def wait_lost(self) -> None:
        """Return once not connected."""
        await self._down.wait()

    @property
    def connections(self) -> int:
        """How many connections have been established so far (1 after the first)."""
        return self._connections

    def _mark_up(self) -> None:  # by the transport only
        self._connections += 1
        self._down.clear()
        self._up.set()

    def _mark_down(self) -> None:  # by the transport only
        self._up.clear()
        self._down.set()


def _paho_socket(client: aiomqtt.Client) -> socket.socket | None:
    """The TCP socket under an aiomqtt client, or None (not connected, websockets).

    aiomqtt 2.x has no public accessor; `client._client` is its paho
    client, whose `socket()` is public.
    """
    paho = client._client
    sock = paho.socket()
    return sock if isinstance(sock, socket.socket) else None


def _disconnection(client: aiomqtt.Client) -> "asyncio.Future[None]":
    """The future aiomqtt resolves when the connection ends.

    aiomqtt signals a lost connection only to a message iterator, which here
    may be busy feeding a slow consumer, and it leaves an operation whose
    connection dropped waiting for its timeout. The supervisor must learn of
    the loss at once to reconnect, and operations to retry, so they wait on
    this private future.
    """
    return client._disconnected


class _ConnectionLost(Exception):
    """A publish's connection dropped before its acknowledgement came (it is sent again)."""


class _Link:
    """One connection's paho callbacks: acknowledgements of our publishes, and arrivals.

    paho calls both on the event loop (aiomqtt reads the socket from a loop
    reader), so they may touch futures directly. aiomqtt's own `on_publish`
    still runs first, for publishes made through aiomqtt (the retry path).
    """

    def __init__(self, client: aiomqtt.Client, deliver: Callable[[Received], None]) -> None:
        self.paho = client._client
        self.loop = asyncio.get_running_loop()
        self.acks: dict[int, asyncio.Future[None]] = {}
        # Typed by paho as a union of its callback API versions; aiomqtt's is version 2.
        inner = cast("Callable[..., None] | None", self.paho.on_publish)
        acks = self.acks

        def on_publish(
            paho: Any, userdata: Any, mid: int, reason_code: Any, properties: Any
        ) -> None:
            if inner is not None:
                inner(paho, userdata, mid, reason_code, properties)
            done = acks.pop(mid, None)
            if done is not None and not done.done():
                done.set_result(None)

        def on_message(paho: Any, userdata: Any, message: Any) -> None:
            deliver(Received(message.topic, message.payload, message.qos, bool(message.retain)))

        self.paho.on_publish = on_publish
        self.paho.on_message = on_message

    def send(
        self, topic: str, payload: bytes, qos: int, retain: bool
    ) -> "asyncio.Future[None] | None":
        """Hand a publish to paho: the future of its acknowledgement, or None if not sent."""
        info = self.paho.publish(topic, payload, qos, retain)
        if info.rc != 0:  # not connected after all, or paho's queue full: the slow path
            return None
        done: asyncio.Future[None] = self.loop.create_future()
        # paho calls on_publish inside publish() for a QoS 0 message written at once.
        if info.is_published():
            done.set_result(None)
        else:
            self.acks[info.mid] = done
        return done

    def close(self) -> None:
        """The connection is gone: no acknowledgement will come for what waits."""
        for done in self.acks.values():
            if not done.done():
                done.set_exception(_ConnectionLost())
        self.acks.clear()


_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
_T = TypeVar("_T")
# Connections one publish or subscribe may try (see Transport._on_connection).
_ATTEMPTS = 3


class Transport:
    """One principal's connection to a broker that survives disconnects.

    Use as an async context manager. Entering waits for the first connection
    (`BrokerRefused` if the broker rejects the credentials or the protocol
    version, `BrokerUnavailable` after `connect_timeout`) unless `wait=False`.
    A refusal on the first connect is final; later disconnects of any kind
    are retried with backoff for as long as the transport is open. Leaving
    sends DISCONNECT (the broker keeps a persistent session) and stops every
    task the transport started; messages still in the queue can be read
    after that, then `messages()` ends.
    """

    def __init__(
        self,
        address: BrokerAddress,
        session: SessionSettings,
        *,
        rng: random.Random,
        credentials: Credentials | None = None,
        backoff: Backoff | None = None,
        connect_timeout: float = 5.0,
        publish_timeout: float = 10.0,
        keepalive: int = 30,
        max_buffered: int = 1000,
        max_payload: int | None = None,
        wait: bool = True,
        max_inflight: int | None = None,
    ) -> None:
        if max_buffered < 1:
            raise ValueError("max_buffered must be at least 1 (the backlog that is warned about)")
        self._address = address
        self._session = session
        self._credentials = credentials if credentials is not None else address.credentials
        self._rng = rng
        self._backoff = backoff if backoff is not None else Backoff()
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._keepalive = keepalive
        self._max_payload = max_payload
        self._wait_on_enter = wait
        # QoS 1/2 publishes unacknowledged at once; paho's default (20) caps a busy
        # publisher at 20 per round trip. None keeps paho's default.
        self._max_inflight = max_inflight
        self._log = structlog.get_logger(__name__).bind(client_id=session.client_id)
        self._filters: dict[str, int] = {}
        self._client: aiomqtt.Client | None = None
        self._state = ConnectionState()
        self._changed = asyncio.Event()
        self._closed = False
        self._refused: BrokerRefused | None = None
        # Arrivals not yet taken by the consumer, and the consumer waiting for one.
        self._inbound: deque[Received] = deque()
        self._reader: asyncio.Future[None] | None = None
        self._max_buffered = max_buffered
        self._backlogged = False
        self._link: _Link | None = None
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle

    async def __aenter__(self) -> Self:
        if self._group is not None:
            raise RuntimeError("a Transport can be entered only once")
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._spawn(self._supervise(), "supervisor")
        if self._wait_on_enter:
            try:
                deadline = asyncio.get_running_loop().time() + self._connect_timeout
                await self._connection("connect", deadline, self._connect_timeout)
            except BaseException:
                await self._close()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        group = self._group
        if group is None or self._closed:
            return
        self._closed = True
        self._notify()
        # Cancelling the supervisor makes its client leave with DISCONNECT.
        # What was received stays readable until the consumer has it all.
        for task in list(self._tasks):
            task.cancel()
        # Not the caller's exception: TaskGroup would wrap it in an
        # ExceptionGroup. It raises only if one of our tasks failed (a bug).
        await group.__aexit__(None, None, None)

    @property
    def address(self) -> BrokerAddress:
        return self._address

    @property
    def session(self) -> SessionSettings:
        return self._session

    @property
    def client_id(self) -> str:
        return self._session.client_id

    @property
    def connected(self) -> ConnectionState:
        return self._state

    def _spawn(self, coro: Coroutine[Any, Any, None], role: str) -> "asyncio.Task[None]":
        assert self._group is not None
        task = self._group.create_task(coro, name=f"transport[{self.client_id}].{role}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _notify(self) -> None:
        # Wake everyone waiting for a change of state; the next change gets a
        # fresh event, so a waiter that checks then waits never misses one.
        self._changed.set()
        self._changed = asyncio.Event()
        self._wake_reader()

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    def _deliver(self, message: Received) -> None:
        """An arrival, from paho's callback on the loop: buffered for the consumer."""
        inbound = self._inbound
        inbound.append(message)
        if len(inbound) > self._max_buffered and not self._backlogged:
            self._backlogged = True
            self._log.warning("consumer_behind", buffered=len(inbound), warn_at=self._max_buffered)
        self._wake_reader()

    # -- the supervisor

    def _new_client(self) -> aiomqtt.Client:
        tls = None
        if self.address.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(self.address.ca_file) if self.address.ca_file else None,
                certfile=str(self.address.certfile) if self.address.certfile else None,
                keyfile=str(self.address.keyfile) if self.address.keyfile else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        creds = self._credentials
        return aiomqtt.Client(
            self.address.host,
            self.address.port,
            username=creds.username if creds else None,
            password=creds.password if creds else None,
            keepalive=self._keepalive,
            timeout=self._connect_timeout,
            tls_params=tls,
            # aiomqtt applies these right after each connect. Without
            # TCP_NODELAY, Nagle plus delayed ACK made a request/reply round
            # trip take 88 ms instead of 0.5 ms on loopback (RELIABILITY.md).
            socket_options=(_NODELAY,),
            # Not used (the _Link takes paho's messages first), but unbounded
            # should that change: a bounded aiomqtt queue drops messages it has
            # already acknowledged.
            max_queued_incoming_messages=0,
            max_inflight_messages=self._max_inflight,
            **self.session.client_options(),
        )

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            # A fresh aiomqtt client per connection: a reused one reports
            # "connected" on its next connect before the CONNACK arrives.
            client = self._new_client()
            # Hooked before connecting: a persistent session's queued messages
            # arrive right after CONNACK, before the subscriptions are restored.
            link = _Link(client, self._deliver)
            up_since: float | None = None
            try:
                await _connect(client)
                try:
                    _ensure_nodelay(client)
                    await self._restore_subscriptions(client)
                    up_since = loop.time()
                    self._client = client
                    self._link = link
                    self._state._mark_up()
                    self._notify()
                    self._log.info(
                        "broker_connected",
                        broker=self.address.display,
                        protocol=self.session.protocol,
                        connection=self._state.connections,
                        attempt=attempt,
                    )
                    lost = _disconnection(client)
                    await asyncio.wait([lost])
                    self._go_down()
                    link.close()
                    reason = None if lost.cancelled() else lost.exception()
                    self._log.warning("broker_disconnected", reason=str(reason or "by request"))
                finally:
                    # Leave with DISCONNECT if still connected (the broker then
                    # keeps a persistent session and sends no will). Suppressed,
                    # so that a failure here never replaces a cancellation.
                    with contextlib.suppress(aiomqtt.MqttError):
                        await client.__aexit__(None, None, None)
            except MqttConnectError as exc:
                refusal = self._refusal(exc)
                self._log.error(
                    "broker_refused", broker=self.address.display, reason=refusal.reason
                )
                if not self._state.connections:
                    # Wrong credentials or protocol from the start: retrying
                    # cannot help, so the caller hears it now.
                    self._refused = refusal
                    self._notify()
                    return
            except aiomqtt.MqttError as exc:
                self._log.info("connect_failed", broker=self.address.display, reason=str(exc))
                if _CERTIFICATE_REFUSED in str(exc) and not self._state.connections:
                    # The broker's certificate is expired, from another CA or for
                    # another name: as final as wrong credentials, so said now.
                    self._refused = BrokerRefused(
                        self.address, self.client_id, f"TLS certificate not accepted: {exc}"
                    )
                    self._log.error("broker_refused", broker=self.address.display, reason=str(exc))
                    self._notify()
                    return
            finally:
                self._go_down()
                link.close()
            if up_since is not None and loop.time() - up_since >= self._backoff.stable_after:
                attempt = 0
            delay = self._backoff.delay(attempt, self._rng)
            attempt += 1
            self._log.info("reconnect_scheduled", delay=round(delay, 3), attempt=attempt)
            await asyncio.sleep(delay)

    def _go_down(self) -> None:
        if self._client is not None or self._state.is_set():
            self._client = None
            self._link = None
            self._state._mark_down()
            self._notify()

    def _refusal(self, exc: MqttConnectError) -> BrokerRefused:
        value = _code_value(exc.rc)
        if value in _AUTH_REFUSED:
            reason = f"bad user name or password, or not authorised (CONNACK {value:#x})"
        elif value in _PROTOCOL_REFUSED:
            reason = f"MQTT {self.session.protocol} not supported (CONNACK {value:#x})"
        else:
            reason = f"CONNACK {value:#x}: {exc}"
        return BrokerRefused(self.address, self.client_id, reason)

    async def _restore_subscriptions(self, client: aiomqtt.Client) -> None:
        if not self._filters:
            return
        wanted = list(self._filters.items())
        granted = await client.subscribe(wanted)
        refused = _refused_filters(wanted, granted)
        for topic_filter in refused:
            self._filters.pop(topic_filter, None)
        if refused:
            self._log.error("subscription_refused", filters=list(refused), on="reconnect")

    # -- running an operation on whatever connection there is

    async def _connection(self, action: str, deadline: float, limit: float) -> aiomqtt.Client:
        loop = asyncio.get_running_loop()
        while True:
            if self._refused is not None:
                raise self._refused
            if self._closed:
                raise BrokerUnavailable(self.address, action, limit, "the transport is closed")
            if self._client is not None:
                return self._client
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BrokerUnavailable(self.address, action, limit)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()

    async def _on_connection(
        self,
        action: str,
        within: float | None,
        operation: Callable[[aiomqtt.Client, float], Awaitable[_T]],
    ) -> _T:
        """Run `operation` on the current connection; again on the next if this one drops.

        At most `_ATTEMPTS` connections: an operation whose connection breaks
        every time is probably what breaks it (Mosquitto drops an MQTT 5
        connection over an oversize PUBLISH), and retrying it would be a
        reconnect storm of our own making.
        """
        loop = asyncio.get_running_loop()
        limit = self._publish_timeout if within is None else within
        deadline = loop.time() + limit
        for _ in range(_ATTEMPTS):
            client = await self._connection(action, deadline, limit)
            remaining = max(deadline - loop.time(), 0.001)
            lost = _disconnection(client)
            attempt = asyncio.ensure_future(operation(client, remaining))
            try:
                # aiomqtt does not fail an operation whose connection drops;
                # it would wait for its timeout. Race the two instead.
                racers: list[asyncio.Future[Any]] = [attempt, lost]
                await asyncio.wait(racers, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not attempt.done():
                    attempt.cancel()
                    await asyncio.wait([attempt])
            error = None if attempt.cancelled() else attempt.exception()
            if not attempt.cancelled() and error is None:
                return attempt.result()
            if isinstance(error, aiomqtt.MqttError) and not lost.done():
                # Usually "not connected": the loss is being signalled.
                await asyncio.wait([lost], timeout=max(deadline - loop.time(), 0))
            if lost.done() and loop.time() < deadline:
                self._log.info("operation_retried", action=action)
                continue
            if error is not None and not isinstance(error, aiomqtt.MqttError):
                raise error
            raise BrokerUnavailable(self.address, action, limit) from error
        self._log.error("operation_abandoned", action=action, attempts=_ATTEMPTS)
        raise BrokerUnavailable(
            self.address,
            action,
            limit,
            f"the connection broke during each of {_ATTEMPTS} attempts "
            "(a payload over the broker's size limit does that at MQTT 5)",
        )

    # -- the public surface

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        *,
        within: float | None = None,
    ) -> None:
        """Publish `payload`; at QoS >= 1 return once the broker has acknowledged it.

        Waits for a connection, and publishes again on the next connection if
        the current one drops first (at most 3 connections), all `within`
        that many seconds (default: the transport's publish timeout); then
        raises `BrokerUnavailable`. So a message may reach subscribers twice.
        An acknowledgement is not a delivery: brokers acknowledge and drop a
        publish their ACL denies, and Mosquitto does the same at MQTT 3.1.1
        with one over its size limit (hence `max_payload`, checked here
        first: `PayloadTooLarge`). Receivers reconcile (DESIGN invariant 3).
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS must be 0, 1 or 2, not {qos!r}")
        if not isinstance(payload, bytes | bytearray):
            raise TypeError(f"payload must be bytes, not {type(payload).__name__}")
        data = bytes(payload)
        if self._max_payload is not None and len(data) > self._max_payload:
            raise PayloadTooLarge(topic, len(data), self._max_payload)

        limit = self._publish_timeout if within is None else within
        link = self._link
        if link is not None:
            acknowledged = link.send(topic, data, qos, retain)
            if acknowledged is not None:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + limit
                try:
                    async with asyncio.timeout(limit):
                        await acknowledged
                    return
                except _ConnectionLost:
                    # Sent again on the next connection, in the time that is left.
                    within = max(deadline - loop.time(), 0.001)
                except TimeoutError:
                    raise BrokerUnavailable(self.address, f"publish to {topic!r}", limit) from None

        async def send(client: aiomqtt.Client, remaining: float) -> None:
            await client.publish(topic, data, qos=qos, retain=retain, timeout=remaining)

        await self._on_connection(f"publish to {topic!r}", within, send)

    async def subscribe(self, *filters: str, qos: int = 1, within: float | None = None) -> None:
        """Subscribe now and after every reconnect; `SubscriptionRefused` if the broker says no.

        A refused filter is forgotten (not retried on reconnect); the others stay.
        """
        if not filters:
            raise ValueError("subscribe needs at least one topic filter")
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS must be 0, 1 or 2, not {qos!r}")
        wanted = [(f, qos) for f in filters]
        # Recorded first, so a reconnect racing with this call restores them too.
        self._filters.update(wanted)

        async def send(client: aiomqtt.Client, remaining: float) -> tuple[str, ...]:
            granted = await client.subscribe(wanted, timeout=remaining)
            return _refused_filters(wanted, granted)

        refused = await self._on_connection(f"subscribe to {list(filters)}", within, send)
        if refused:
            for topic_filter in refused:
                self._filters.pop(topic_filter, None)
            self._log.error("subscription_refused", filters=list(refused))
            raise SubscriptionRefused(self.client_id, refused)

    def messages(self) -> AsyncIterator[Received]:
        """Everything received, in arrival order, across reconnects; ends once the transport closed.

        Meant for one consumer: two iterators would split one queue between them.
        """
        return _Inbox(self)

    def tcp_nodelay(self) -> bool:
        """Whether TCP_NODELAY is set on the current connection's socket (a diagnostic)."""
        client = self._client
        sock = _paho_socket(client) if client is not None else None
        return sock is not None and bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


class _Inbox:
    """The async iterator behind `Transport.messages()`."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Received:
        transport = self._transport
        inbound = transport._inbound
        while True:
            if inbound:
                # Taken synchronously: a consumer cancelled while waiting
                # below can never have removed a message it did not return.
                if transport._backlogged and len(inbound) <= transport._max_buffered // 2:
                    transport._backlogged = False
                return inbound.popleft()
            if transport._closed:
                raise StopAsyncIteration
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            transport._reader = waiter
            try:
                await waiter
            finally:
                if transport._reader is waiter:
                    transport._reader = None


async def _connect(client: aiomqtt.Client) -> None:
    """Connect, and if that fails or is cancelled, do not leave a socket behind.

    aiomqtt 2.5 leaves the socket open, and registered with the event loop,
    when its connect times out or is cancelled before the CONNACK: a broker
    that never answers would keep it for ever, and when the peer does close
    it, aiomqtt's callback trips over its cancelled connect future ("Exception
    in callback"). paho's `_sock_close()` unregisters the socket (through
    aiomqtt's socket-close callback) and closes it without running the
    disconnect callbacks; it is private, hence this one wrapper.
    """
    try:
        await client.__aenter__()
    except BaseException:
        paho = client._client
        if paho.socket() is not None:
            paho._sock_close()
        raise


def _ensure_nodelay(client: aiomqtt.Client) -> None:
    # aiomqtt sets socket_options after connect; check rather than trust,
    # because a silently missing TCP_NODELAY costs ~90 ms per round trip.
    sock = _paho_socket(client)
    # OSError: the socket closed under us; the supervisor hears of it next.
    with contextlib.suppress(OSError):
        if sock is not None and not sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
            sock.setsockopt(*_NODELAY)


def _refused_filters(wanted: list[tuple[str, int]], granted: object) -> tuple[str, ...]:
    codes = list(granted) if isinstance(granted, list | tuple) else []
    if len(codes) != len(wanted):
        # A SUBACK must answer every filter; treat a short one as refusing all.
        return tuple(f for f, _ in wanted)
    return tuple(f for (f, _), code in zip(wanted, codes, strict=True) if _failed(code))


def _code_value(code: object) -> int:
    """The number of a paho return or reason code (-1 if there is none)."""
    if isinstance(code, ReasonCode):
        return int(code.value)
    return code if isinstance(code, int) else -1


def _failed(code: object) -> bool:
    return not 0 <= _code_value(code) < _SUBACK_FAILURE
