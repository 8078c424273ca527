"""The `Transport`: one principal's connection that survives disconnects."""

import asyncio
import contextlib
import random
import socket
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

import aiomqtt
import structlog
from aiomqtt.exceptions import MqttConnectError

from simulator.transport.address import BrokerAddress, Credentials, Node
from simulator.transport.backoff import Backoff
from simulator.transport.constants import _AUTH_REFUSED, _CERTIFICATE_REFUSED, _PROTOCOL_REFUSED
from simulator.transport.errors import (
    BrokerRefused,
    BrokerUnavailable,
    PayloadTooLarge,
    SubscriptionRefused,
)
from simulator.transport.link import (
    _NODELAY,
    Received,
    _code_value,
    _connect,
    _ConnectionLost,
    _disconnection,
    _ensure_nodelay,
    _Link,
    _paho_socket,
    _refused_filters,
)
from simulator.transport.session import SessionSettings

_T = TypeVar("_T")
# Connections one publish or subscribe may try (see Transport._on_connection).
_ATTEMPTS = 3


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

    On a cluster (`address.nodes` has several), the first connection goes to
    the node a hash of the client id picks, and every failed or dropped
    connection moves on to the next node, round the list: a dead node costs
    one refused connect. A CONNACK refusal is final only for wrong
    credentials or protocol; a node that answers "unavailable" (a NATS node
    still electing its JetStream leaders) is passed over like a dead one.

    On a cluster, a publish that times out on a connection that stays open
    makes the transport leave that node for the next (`_leave_stuck_node`).

    `max_qos`: the highest QoS the broker takes. Publishes and subscriptions
    asking for more are made at `max_qos` (NATS 2.9 closes the connection of
    a client that publishes at QoS 2); delivery stays at-least-once and the
    receivers deduplicate (DESIGN invariant 3), so nothing is lost by it.
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
        max_qos: int = 2,
    ) -> None:
        if max_buffered < 1:
            raise ValueError("max_buffered must be at least 1 (the backlog that is warned about)")
        if max_qos not in (0, 1, 2):
            raise ValueError(f"max_qos must be 0, 1 or 2, not {max_qos!r}")
        self._address = address
        self._session = session
        self._max_qos = max_qos
        # Which node of the address to connect to next: spread by client id, stable per client.
        self._node = zlib.crc32(session.client_id.encode()) % len(address.nodes)
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
    def node(self) -> Node:
        """The node this transport is connected to, or will try next."""
        return self.address.nodes[self._node]

    def _next_node(self) -> None:
        self._node = (self._node + 1) % len(self.address.nodes)

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
        node = self.node
        return aiomqtt.Client(
            node.host,
            node.port,
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
                        node=self.node.display,
                        protocol=self.session.protocol,
                        connection=self._state.connections,
                        attempt=attempt,
                    )
                    lost = _disconnection(client)
                    await asyncio.wait([lost])
                    self._go_down()
                    link.close()
                    reason = None if lost.cancelled() else lost.exception()
                    self._log.warning(
                        "broker_disconnected",
                        node=self.node.display,
                        reason=str(reason or "by request"),
                    )
                    # The node may be gone: the next connection tries another.
                    self._next_node()
                finally:
                    # Leave with DISCONNECT if still connected (the broker then
                    # keeps a persistent session and sends no will). Suppressed,
                    # so that a failure here never replaces a cancellation.
                    with contextlib.suppress(aiomqtt.MqttError):
                        await client.__aexit__(None, None, None)
            except MqttConnectError as exc:
                if self._final_refusal(exc):
                    return
            except aiomqtt.MqttError as exc:
                if self._connect_failed(exc):
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

    def _final_refusal(self, exc: MqttConnectError) -> bool:
        """A CONNACK refused: True if that ends the transport (said to the caller)."""
        refusal = self._refusal(exc)
        self._log.error(
            "broker_refused",
            broker=self.address.display,
            node=self.node.display,
            reason=refusal.reason,
        )
        self._next_node()
        final = _code_value(exc.rc) in _AUTH_REFUSED | _PROTOCOL_REFUSED
        if self._state.connections or not (final or len(self.address.nodes) == 1):
            return False
        # Wrong credentials or protocol from the start: retrying cannot help,
        # so the caller hears it now. Another node of a cluster may be able to
        # serve where this one could not, so only these two end it there.
        self._refused = refusal
        self._notify()
        return True

    def _connect_failed(self, exc: aiomqtt.MqttError) -> bool:
        """A connect failed or a connection broke: True if that ends the transport."""
        self._log.info(
            "connect_failed",
            broker=self.address.display,
            node=self.node.display,
            reason=str(exc),
        )
        self._next_node()
        if _CERTIFICATE_REFUSED not in str(exc) or self._state.connections:
            return False
        # The broker's certificate is expired, from another CA or for another
        # name: as final as wrong credentials, so said now.
        self._refused = BrokerRefused(
            self.address, self.client_id, f"TLS certificate not accepted: {exc}"
        )
        self._log.error("broker_refused", broker=self.address.display, reason=str(exc))
        self._notify()
        return True

    def _leave_stuck_node(self, link: _Link) -> None:
        """A publish went unacknowledged on an open connection: on a cluster, try another node.

        A NATS 2.9 node whose JetStream lost its leaders with another node
        may keep a connection open and never acknowledge a QoS 1 publish on
        it (seen for minutes). MQTT 3.1.1 resends only on a new connection,
        so on a cluster the transport leaves with DISCONNECT (the persistent
        session stays) and the supervisor reconnects to the next node. With
        one node there is nowhere else to go, and a busy broker is no reason
        to drop a connection.
        """
        if len(self.address.nodes) > 1 and self._link is link:
            self._log.warning("publish_unacknowledged", node=self.node.display)
            link.paho.disconnect()

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

        At most `_ATTEMPTS` connections per node: an operation whose connection
        breaks every time is probably what breaks it (Mosquitto drops an MQTT 5
        connection over an oversize PUBLISH), and retrying it would be a
        reconnect storm of our own making. On a cluster the count is per node,
        since a node's loss breaks connections to the others too for a while (a
        NATS cluster drops MQTT clients while it moves the dead node's session
        streams): failing over through every node is no storm.
        """
        loop = asyncio.get_running_loop()
        limit = self._publish_timeout if within is None else within
        deadline = loop.time() + limit
        attempts = _ATTEMPTS * len(self.address.nodes)
        for _ in range(attempts):
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
        self._log.error("operation_abandoned", action=action, attempts=attempts)
        raise BrokerUnavailable(
            self.address,
            action,
            limit,
            f"the connection broke during each of {attempts} attempts "
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
        qos = min(qos, self._max_qos)
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
                    self._leave_stuck_node(link)
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
        qos = min(qos, self._max_qos)
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
