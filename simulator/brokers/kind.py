"""Choosing the broker of a run: embedded (the default), Mosquitto, a NATS cluster, or a URL."""

import re
from collections.abc import Iterable
from pathlib import Path

from simulator.brokers.base import Broker, exercise_principals
from simulator.brokers.embedded import EmbeddedBroker
from simulator.brokers.external import ExternalBroker
from simulator.brokers.mosquitto import MosquittoBroker
from simulator.brokers.nats import DEFAULT_NODES, NatsCluster
from simulator.brokers.tls import TlsFiles
from simulator.errors import InputError
from simulator.messaging.topics import Topics
from simulator.transport import BrokerUrlError

__all__ = ["BROKER_KINDS", "start_broker"]

BROKER_KINDS = ("embedded", "mosquitto", "nats")
_NATS = re.compile(r"nats(?::(\d+))?")


def start_broker(
    kind: str,
    topics: Topics,
    parties: Iterable[str],
    workdir: Path,
    *,
    tls: TlsFiles | None = None,
    restricted_observer: bool = False,
    port: int = 0,
) -> Broker:
    """The broker for `kind`, to enter: "embedded", "mosquitto", "nats[:N]" or a URL.

    "nats" is a cluster of three nats-server nodes ("nats:N": N nodes), an
    URL names someone else's broker or cluster (`mqtt://h1:p1,h2:p2,...`).
    `async with start_broker(...) as broker:` starts it (for the first three),
    with fresh accounts for the umpire, observer, controller and every party,
    and stops it on the way out. Files go to `workdir`. With `tls` (see
    `simulator.brokers.tls.generate_tls`) a broker we start listens with TLS
    only; an external broker must then be named by an mqtts:// URL.
    `restricted_observer`: the observer reads only log topics and the clock,
    not where confidential cases travel (`simulator.brokers.access`). `port`:
    where a broker we start listens (0: a free port the OS picks).
    """
    if kind == "embedded":
        return EmbeddedBroker(
            topics,
            exercise_principals(parties),
            workdir=workdir,
            tls=tls,
            restricted_observer=restricted_observer,
            port=port,
        )
    if kind == "mosquitto":
        return MosquittoBroker(
            topics,
            exercise_principals(parties),
            workdir=workdir,
            tls=tls,
            restricted_observer=restricted_observer,
            port=port,
        )
    nats = _NATS.fullmatch(kind)
    if nats is not None:
        if port:
            raise InputError("a NATS cluster picks free ports for its nodes: give no port")
        return NatsCluster(
            topics,
            exercise_principals(parties),
            workdir=workdir,
            nodes=int(nats.group(1)) if nats.group(1) else DEFAULT_NODES,
            tls=tls,
            restricted_observer=restricted_observer,
        )
    if kind.startswith("mqtt://") and tls is not None:
        raise BrokerUrlError(kind, "a secure run needs an mqtts:// URL, not mqtt://")
    if kind.startswith(("mqtt://", "mqtts://")):
        return ExternalBroker(kind)
    raise BrokerUrlError(
        kind, 'expected "embedded", "mosquitto", "nats", "nats:N" or an mqtt:// or mqtts:// URL'
    )
