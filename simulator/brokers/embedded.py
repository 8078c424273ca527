"""The embedded default broker: amqtt in this process, on a loopback port, authentication on.

What amqtt 0.12 enforces here, and what it does not:

- Authentication: yes. `FileAuthPlugin` checks every CONNECT against a
  password file of Argon2 hashes; anonymous clients and wrong passwords get
  CONNACK "not authorised". Authentication also matters for delivery:
  amqtt keeps no offline queue for an anonymous session (RELIABILITY.md).
- Topic ACL: yes, per user and by concrete filter (no `%u` patterns, so
  each party gets its own list), for publish, subscribe and receive
  (`ExerciseAclPlugin` below). A denied PUBLISH is acknowledged (PUBACK) and
  then dropped, so the publisher cannot tell; a denied SUBSCRIBE gets the
  failure code 0x80 in its SUBACK; a message the receive ACL refuses is not
  delivered even to a subscription that matched. The receive ACL matters:
  amqtt's subscribe check lets a `+` in an allowed filter match a `#` in
  the requested one, so `log/alpha/#` passes against `log/alpha/+`.
- Message size: no limit at all (amqtt has no setting); oversize payloads
  must be refused by the application (`simulator.messaging.wire`).
- MQTT 5: no; amqtt speaks MQTT 3.1.1 only and does not even answer an
  MQTT 5 CONNECT (the client times out), so `transport_for` refuses it.
- Persistence: none. Sessions and queued messages live in memory and end
  with the broker; amqtt does not resend unacknowledged QoS 1 messages on
  reconnect (RELIABILITY.md), which the application's resend covers.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog

# amqtt ships no type hints (no py.typed); the names used here are wrapped
# in typed code below.
from amqtt.adapters import (  # type: ignore[import-untyped]
    StreamReaderAdapter,
    StreamWriterAdapter,
)
from amqtt.broker import Broker as _AmqttBroker  # type: ignore[import-untyped]
from amqtt.plugins.topic_checking import (  # type: ignore[import-untyped]
    TopicAccessControlListPlugin,
)
from pwdlib.hashers.argon2 import Argon2Hasher

from simulator.brokers.access import amqtt_acls
from simulator.brokers.base import BrokerStartError, account_credentials, write_private
from simulator.brokers.tls import TlsFiles, server_context
from simulator.messaging.topics import Topics
from simulator.transport import BrokerAddress, Credentials, MqttProtocol

__all__ = ["EmbeddedBroker", "ExerciseAclPlugin"]

_log = structlog.get_logger(__name__)

# Passwords are 256-bit random tokens (exercise_principals), so the hash
# needs no stretching; amqtt's default Argon2 parameters cost ~0.25 s per
# connect, these ~10 ms. The parameters travel inside each hash.
_HASHER = Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


class ExerciseAclPlugin(TopicAccessControlListPlugin):  # type: ignore[misc]  # amqtt is untyped
    """amqtt's topic ACL plugin with all three lists configurable.

    The stock plugin's config dataclass accepts only `publish_acl` and the
    deprecated `acl` (for subscribe) although its code also reads
    `subscribe-acl` and `receive-acl`; this config declares all three, and
    the inherited matching does the rest. A user missing from a list is
    refused that action.
    """

    @dataclass
    class Config:
        publish_acl: dict[str, list[str]] = field(default_factory=dict)
        subscribe_acl: dict[str, list[str]] = field(default_factory=dict)
        receive_acl: dict[str, list[str]] = field(default_factory=dict)


def _plugin_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class _SnapshotItems(dict[str, list[Any]]):
    """A dict whose `items()` is a list copy, safe to walk across awaits."""

    def items(self) -> list[tuple[str, list[Any]]]:  # type: ignore[override]
        return list(super().items())


class _Broker(_AmqttBroker):  # type: ignore[misc]  # amqtt is untyped
    """amqtt's broker, delivering what a client published before it left."""

    async def _handle_disconnect(
        self, client_session: Any, handler: Any, disconnect_waiter: Any
    ) -> None:
        # amqtt 0.12 queues a client's PUBLISH and acknowledges it (PUBACK) at once, but
        # broadcasts the queue one message per turn of the client's loop, which ends at
        # its disconnect; and its session monitor empties a clean session's queue once
        # it is disconnected. What it had not reached by then was acknowledged and never
        # delivered (a burst of 200 from a client that then left: about half). Taken
        # here, before the session counts as disconnected, and delivered after.
        queue = client_session.delivered_message_queue
        left = [queue.get_nowait() for _ in range(queue.qsize())]
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)
        for message in left:
            taken = asyncio.get_running_loop().create_future()
            taken.set_result(message)
            if not await self._handle_message_delivery(client_session, handler, taken):
                break


class EmbeddedBroker:
    """amqtt running in the current event loop on `host` (loopback) and `port` (0: a free one).

    We own the listening socket and hand each connection to amqtt as an
    "external" listener. That is amqtt's public way in; it tells us the port
    the OS picked, and it lets stopping be clean: amqtt's shutdown ends the
    sessions it knows, but a connection that never completed CONNECT (a
    port scan, a client speaking MQTT 5) would stay pending in amqtt and be
    cancelled noisily when the loop closes. We close those ourselves.
    """

    name = "embedded"
    protocols: tuple[MqttProtocol, ...] = ("3.1.1",)
    # amqtt has no size limit (module docstring).
    message_size_limit: int | None = None
    max_qos = 2

    def __init__(
        self,
        topics: Topics,
        accounts: Mapping[str, str],
        *,
        workdir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        stop_timeout: float = 5.0,
        tls: TlsFiles | None = None,
        restricted_observer: bool = False,
    ) -> None:
        """`accounts` maps each principal to its password (see `exercise_principals`).

        With `tls` the broker speaks MQTT over TLS only (no plain listener);
        `restricted_observer` keeps the observer off confidential topics.
        """
        self.topics = topics
        self.tls = tls
        self.restricted_observer = restricted_observer
        self._accounts = dict(accounts)
        self.workdir = workdir
        self.password_file = workdir / "amqtt.passwd"
        self._host = host
        self._port = port
        self._stop_timeout = stop_timeout
        self._broker: Any = None
        self._server: asyncio.Server | None = None
        self._address: BrokerAddress | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    @property
    def address(self) -> BrokerAddress:
        if self._address is None:
            raise RuntimeError("the embedded broker has no address until it is started")
        return self._address

    def credentials(self, principal: str) -> Credentials:
        return account_credentials(self._accounts, principal)

    def config(self) -> dict[str, Any]:
        """The amqtt broker configuration (a dict in amqtt's schema)."""
        publish, read = amqtt_acls(
            self.topics, self._accounts, restricted_observer=self.restricted_observer
        )
        return {
            # amqtt binds nothing for an external listener; we feed it.
            "listeners": {"default": {"type": "external"}},
            "plugins": {
                # Only these two: no anonymous access, no $SYS publisher, no
                # packet logger.
                "amqtt.plugins.authentication.FileAuthPlugin": {
                    "password_file": str(self.password_file)
                },
                _plugin_path(ExerciseAclPlugin): {
                    "publish_acl": publish,
                    "subscribe_acl": read,
                    "receive_acl": read,
                },
            },
        }

    def _write_password_file(self) -> None:
        lines = [f"{user}:{_HASHER.hash(pw)}\n" for user, pw in self._accounts.items()]
        write_private(self.password_file, "".join(lines))

    async def __aenter__(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Hashing is CPU work; keep the caller's event loop responsive.
        await asyncio.to_thread(self._write_password_file)
        broker = _Broker(self.config())
        await broker.start()
        # amqtt 0.12's broadcast walks `_subscriptions.items()` across an await (its
        # topic check), so a client unsubscribing or leaving meanwhile raised
        # "dictionary changed size during iteration" in its broadcast task (seen in
        # the transport contract tests, about one run in three). Walking a copy
        # delivers the same messages: what changed meanwhile is skipped, as it would
        # be a moment later.
        broker._subscriptions = _SnapshotItems(broker._subscriptions)
        self._broker = broker
        try:
            self._server = await asyncio.start_server(
                self._serve,
                self._host,
                self._port,
                ssl=server_context(self.tls) if self.tls is not None else None,
            )
        except OSError as exc:
            await self._stop()
            raise BrokerStartError(
                f"embedded broker could not listen on {self._host}:{self._port}: {exc}"
            ) from exc
        port = self._server.sockets[0].getsockname()[1]
        if self.tls is not None:
            self._address = BrokerAddress(self._host, port, tls=True, ca_file=self.tls.ca_file)
        else:
            self._address = BrokerAddress(self._host, port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # asyncio's start_server runs this in a task of its own (and sets
        # TCP_NODELAY on the accepted socket).
        task = asyncio.current_task()
        broker = self._broker
        if task is None or broker is None:  # accepted as we were stopping
            writer.close()
            return
        self._connections[task] = writer
        try:
            await broker.external_connected(
                StreamReaderAdapter(reader), StreamWriterAdapter(writer), "default"
            )
        except (OSError, EOFError) as exc:
            # A peer that vanished before finishing CONNECT: amqtt 0.12 lets
            # the socket error (reset, ENOTCONN on close, EOF) escape; for a
            # broker it is an ordinary event.
            _log.debug("peer_vanished", reason=repr(exc))
        finally:
            self._connections.pop(task, None)
            writer.close()

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
        # Whatever amqtt still holds: closing the socket makes its pending
        # read end, so the task finishes by itself instead of being cancelled.
        for writer in self._connections.values():
            writer.close()
        pending = list(self._connections)
        if pending:
            _, stuck = await asyncio.wait(pending, timeout=self._stop_timeout)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck)
