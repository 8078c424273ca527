"""The one interface every broker offers, and the accounts of an exercise."""

import os
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from simulator.context import secret_token
from simulator.errors import BrokerError
from simulator.messaging.topics import CONTROLLER, OBSERVER, UMPIRE, check_party_id
from simulator.transport import (
    Backoff,
    BrokerAddress,
    Credentials,
    MqttProtocol,
    SessionSettings,
    Transport,
)

__all__ = [
    "SIMULATOR_PRINCIPALS",
    "Broker",
    "BrokerStartError",
    "UnknownPrincipal",
    "UnsupportedProtocol",
    "account_credentials",
    "exercise_principals",
    "transport_for",
    "write_private",
]

# The simulator's own principals, in the order ACLs list them.
SIMULATOR_PRINCIPALS = (UMPIRE, OBSERVER, CONTROLLER)


class BrokerStartError(BrokerError):
    """A broker we launch could not be started (binary missing, bad config, port taken)."""


class UnsupportedProtocol(BrokerError):
    """The broker does not speak the MQTT version asked for."""

    def __init__(self, broker: str, protocol: str, supported: Iterable[str]) -> None:
        self.broker = broker
        self.protocol = protocol
        super().__init__(
            f"the {broker} broker does not speak MQTT {protocol} (only {', '.join(supported)})"
        )


class UnknownPrincipal(BrokerError, KeyError):
    """Credentials were asked for a principal the broker has no account for."""

    def __init__(self, principal: str, known: Iterable[str]) -> None:
        self.principal = principal
        super().__init__(
            f"no broker account for {principal!r}; the exercise's principals are {sorted(known)}"
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Broker(Protocol):
    """An MQTT broker for one exercise: entered to start it (if we run it), left to stop it.

    `address` is valid once entered (a launched broker picks a free port on
    start). `credentials(principal)` gives the user name and password a
    principal (umpire, observer, controller or a party id) connects with.
    """

    @property
    def name(self) -> str: ...

    @property
    def address(self) -> BrokerAddress: ...

    @property
    def protocols(self) -> tuple[MqttProtocol, ...]:
        """The MQTT versions this broker speaks."""
        ...

    @property
    def message_size_limit(self) -> int | None:
        """The largest payload the broker passes on, if it has (and we know) a limit."""
        ...

    @property
    def max_qos(self) -> int:
        """The highest QoS the broker takes; transports publish and subscribe at most at it."""
        ...

    def credentials(self, principal: str) -> Credentials: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def exercise_principals(parties: Iterable[str]) -> dict[str, str]:
    """A fresh random password for the umpire, the observer, the controller and every party.

    Party ids are validated (`check_party_id`: no reserved names, nothing that
    could change a topic or an ACL pattern) and must be distinct. Passwords
    are 256-bit `secrets.token_urlsafe` strings, so brokers may hash them with
    cheap parameters: stretching only protects guessable passwords.
    """
    accounts = {principal: secret_token(32) for principal in SIMULATOR_PRINCIPALS}
    for party in parties:
        check_party_id(party)
        if party in accounts:
            raise ValueError(f"party id {party!r} appears twice")
        accounts[party] = secret_token(32)
    return accounts


def account_credentials(accounts: Mapping[str, str], principal: str) -> Credentials:
    """The credentials of `principal` in a broker's own account table."""
    try:
        return Credentials(principal, accounts[principal])
    except KeyError:
        raise UnknownPrincipal(principal, accounts) from None


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: password files, plain or hashed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    # O_CREAT's mode does not apply to a file that already existed.
    path.chmod(0o600)


# How long a publish waits for a connection before the run gives up on the broker: on
# one broker, soon, with a clear error; on a cluster, long enough for a node's death.
# A 3-node NATS cluster on a busy 2-core machine refused reconnections ("closed before
# its CONNACK", 4 s each) for 8 s after the umpire's node was killed, and a 10 s
# publish then ended the run that the cluster was there to keep going.
PUBLISH_S = 10.0
CLUSTER_PUBLISH_S = 60.0


def transport_for(
    broker: Broker,
    principal: str,
    session: SessionSettings,
    *,
    rng: random.Random,
    backoff: Backoff | None = None,
    connect_timeout: float = 5.0,
    publish_timeout: float | None = None,
    keepalive: int = 30,
    max_buffered: int = 1000,
    wait: bool = True,
    max_inflight: int | None = None,
) -> Transport:
    """A transport (not yet entered) for `principal` on a started `broker`.

    Uses the principal's own credentials, the broker's payload limit and
    highest QoS (a QoS 2 publish on NATS 2.9 is made at QoS 1), and
    refuses up front a protocol the broker does not speak: amqtt does not
    answer an MQTT 5 CONNECT at all, so the client would only time out.
    A publish gives up after `publish_timeout` s; by default 10 s on one
    broker, and on a cluster long enough to fail over (`CLUSTER_PUBLISH_S`).
    """
    if session.protocol not in broker.protocols:
        raise UnsupportedProtocol(broker.name, session.protocol, broker.protocols)
    if publish_timeout is None:
        publish_timeout = CLUSTER_PUBLISH_S if broker.address.others else PUBLISH_S
    return Transport(
        broker.address,
        session,
        rng=rng,
        credentials=broker.credentials(principal),
        backoff=backoff,
        connect_timeout=connect_timeout,
        publish_timeout=publish_timeout,
        keepalive=keepalive,
        max_buffered=max_buffered,
        max_payload=broker.message_size_limit,
        wait=wait,
        max_inflight=max_inflight,
        max_qos=broker.max_qos,
    )
