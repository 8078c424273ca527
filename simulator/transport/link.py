"""Where aiomqtt 2.x falls short, we reach into it: the socket, disconnection, paho's callbacks."""

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from simulator.transport.constants import _SUBACK_FAILURE


class Received(NamedTuple):
    """A message as the broker delivered it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


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
    _fail_connect_on_close(client)
    try:
        await client.__aenter__()
    except BaseException:
        paho = client._client
        if paho.socket() is not None:
            paho._sock_close()
        raise


def _fail_connect_on_close(client: aiomqtt.Client) -> None:
    """Make a connection the broker closes before its CONNACK fail the connect at once.

    aiomqtt 2.5 ignores a disconnect that comes before the CONNACK and waits
    out its whole timeout. A NATS node that cannot load the session (its
    cluster still electing JetStream leaders after losing a node) closes the
    connection after 4 s without a CONNACK: failing over to the next node
    should start then, not at the timeout (30 s for a load run's umpire).
    `client._connected` is the private future aiomqtt's connect waits for.
    """
    paho = client._client
    # Typed by paho as a union of its callback API versions; aiomqtt's is version 2.
    inner = cast("Callable[..., None] | None", paho.on_disconnect)

    def on_disconnect(*args: Any) -> None:
        if inner is not None:
            inner(*args)
        connected = client._connected
        if not connected.done():
            connected.set_exception(
                aiomqtt.MqttError("the broker closed the connection before its CONNACK")
            )

    paho.on_disconnect = on_disconnect


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


# Nagle plus delayed ACK made a request/reply round trip 88 ms instead of 0.5 ms.
_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
