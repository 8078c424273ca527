"""Choosing the broker of a run: embedded (the default), Mosquitto, or a URL."""

from collections.abc import Iterable
from pathlib import Path

from simulator.brokers.base import Broker, exercise_principals
from simulator.brokers.embedded import EmbeddedBroker
from simulator.brokers.external import ExternalBroker
from simulator.brokers.mosquitto import MosquittoBroker
from simulator.brokers.tls import TlsFiles
from simulator.messaging.topics import Topics
from simulator.transport import BrokerUrlError

__all__ = ["BROKER_KINDS", "start_broker"]

BROKER_KINDS = ("embedded", "mosquitto")


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
    """The broker for `kind` ("embedded", "mosquitto" or an mqtt:// / mqtts:// URL), to enter.

    `async with start_broker(...) as broker:` starts it (for the first two),
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
    if kind.startswith("mqtt://") and tls is not None:
        raise BrokerUrlError(kind, "a secure run needs an mqtts:// URL, not mqtt://")
    if kind.startswith(("mqtt://", "mqtts://")):
        return ExternalBroker(kind)
    raise BrokerUrlError(kind, 'expected "embedded", "mosquitto" or an mqtt:// or mqtts:// URL')
