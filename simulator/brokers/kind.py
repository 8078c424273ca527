"""Choosing the broker of a run: embedded (the default), Mosquitto, or a URL."""

from collections.abc import Iterable
from pathlib import Path

from simulator.brokers.base import Broker, exercise_principals
from simulator.brokers.embedded import EmbeddedBroker
from simulator.brokers.external import ExternalBroker
from simulator.brokers.mosquitto import MosquittoBroker
from simulator.topics import Topics
from simulator.transport import BrokerUrlError

__all__ = ["BROKER_KINDS", "start_broker"]

BROKER_KINDS = ("embedded", "mosquitto")


def start_broker(kind: str, topics: Topics, parties: Iterable[str], workdir: Path) -> Broker:
    """The broker for `kind` ("embedded", "mosquitto" or an mqtt:// / mqtts:// URL), to enter.

    `async with start_broker(...) as broker:` starts it (for the first two),
    with fresh accounts for the umpire, observer, controller and every party,
    and stops it on the way out. Files go to `workdir`.
    """
    if kind == "embedded":
        return EmbeddedBroker(topics, exercise_principals(parties), workdir=workdir)
    if kind == "mosquitto":
        return MosquittoBroker(topics, exercise_principals(parties), workdir=workdir)
    if kind.startswith(("mqtt://", "mqtts://")):
        return ExternalBroker(kind)
    raise BrokerUrlError(kind, 'expected "embedded", "mosquitto" or an mqtt:// or mqtts:// URL')
