"""MQTT brokers of an exercise, behind one `Broker` interface: embedded, Mosquitto, NATS, URL."""

from simulator.brokers.access import Grants, amqtt_acls, grants_for, mosquitto_acl
from simulator.brokers.base import (
    SIMULATOR_PRINCIPALS,
    Broker,
    BrokerStartError,
    UnknownPrincipal,
    UnsupportedProtocol,
    exercise_principals,
    transport_for,
)
from simulator.brokers.embedded import EmbeddedBroker
from simulator.brokers.external import ExternalBroker
from simulator.brokers.kind import BROKER_KINDS, start_broker
from simulator.brokers.mosquitto import MosquittoBroker
from simulator.brokers.nats import NatsCluster

__all__ = [
    "BROKER_KINDS",
    "SIMULATOR_PRINCIPALS",
    "Broker",
    "BrokerStartError",
    "EmbeddedBroker",
    "ExternalBroker",
    "Grants",
    "MosquittoBroker",
    "NatsCluster",
    "UnknownPrincipal",
    "UnsupportedProtocol",
    "amqtt_acls",
    "exercise_principals",
    "grants_for",
    "mosquitto_acl",
    "start_broker",
    "transport_for",
]
