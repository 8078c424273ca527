"""A broker of several nodes: one URL names them all, and a transport moves between them."""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from simulator.brokers import ExternalBroker, MosquittoBroker
from simulator.faults.proxy import PUBACK, FaultProxy, Rule
from simulator.messaging.topics import Topics
from simulator.transport import (
    BrokerAddress,
    BrokerUnavailable,
    BrokerUrlError,
    Node,
    SessionSettings,
    Transport,
)
from simulator.transport.link import _connect


def test_a_url_names_every_node_of_a_cluster() -> None:
    """`mqtt://user:pw@h1:1,h2,[::1]:3`: one scheme and login, nodes in order, default ports."""
    address = BrokerAddress.from_url("mqtts://u:pw@h1:1,h2,[::1]:3?ca_file=/ca.pem", environ={})
    assert address.nodes == (Node("h1", 1), Node("h2", 8883), Node("::1", 3))
    assert (address.host, address.port) == ("h1", 1)
    assert address.credentials == ("u", "pw")
    assert address.display == "mqtts://u@h1:1,h2:8883,[::1]:3"
    assert BrokerAddress.from_url("mqtt://h", environ={}).nodes == (Node("h", 1883),)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mqtt://h1:1,", "has no host"),
        ("mqtt://h1:1,h1:1", "named twice"),
        ("mqtt://h1:1,h2:99999", "node 'h2:99999'"),
    ],
)
def test_a_bad_node_list_is_refused_naming_the_node(url: str, problem: str) -> None:
    with pytest.raises(BrokerUrlError, match=problem):
        BrokerAddress.from_url(url, environ={})


def test_an_external_broker_may_say_it_takes_no_qos_2() -> None:
    """`?max_qos=1` (RabbitMQ, NATS 2.9): transports then publish and subscribe at QoS 1."""
    broker = ExternalBroker("mqtt://u:pw@h1:1,h2:2?max_qos=1", environ={})
    assert broker.max_qos == 1
    assert len(broker.address.nodes) == 2
    assert ExternalBroker("mqtt://u:pw@h", environ={}).max_qos == 2
    with pytest.raises(BrokerUrlError, match="max_qos"):
        ExternalBroker("mqtt://u:pw@h?max_qos=3", environ={})


@contextlib.asynccontextmanager
async def _closing_server() -> AsyncIterator[int]:
    """A TCP server that reads a CONNECT and closes without a CONNACK (a NATS node electing)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_a_connection_closed_before_its_connack_fails_the_connect_there() -> None:
    """Not after aiomqtt's timeout: the failure says the broker closed the connection."""
    async with _closing_server() as port:
        client = aiomqtt.Client("127.0.0.1", port, identifier="closed-early", timeout=600)
        with pytest.raises(aiomqtt.MqttError, match="closed the connection before its CONNACK"):
            await _connect(client)


async def test_a_transport_passes_over_a_dead_node_to_a_live_one(
    mosquitto_broker: MosquittoBroker,
) -> None:
    """Its first node closes every connection: the transport connects to the next one."""
    live = mosquitto_broker.address
    async with _closing_server() as dead:
        address = BrokerAddress("127.0.0.1", dead, others=(Node(live.host, live.port),))
        transport = Transport(
            address,
            # "nodes-d" hashes to the first node, the dead one.
            SessionSettings("nodes-d", persistent=False),
            rng=random.Random(1),
            credentials=mosquitto_broker.credentials("umpire"),
            connect_timeout=30,
        )
        async with transport:
            assert transport.node == Node(live.host, live.port)
            assert transport.connected.connections == 1


async def test_a_publish_left_unacknowledged_moves_the_transport_to_the_next_node(
    mosquitto_broker: MosquittoBroker, topics: Topics
) -> None:
    """A node that never acknowledges (a NATS node without its JetStream leaders): next node."""
    async with FaultProxy(mosquitto_broker.address) as proxy:
        proxy.add(Rule("drop", direction="down", kind=PUBACK, count=None))
        stuck, live = proxy.address, mosquitto_broker.address
        address = BrokerAddress(stuck.host, stuck.port, others=(Node(live.host, live.port),))
        transport = Transport(
            address,
            # "nodes-d" hashes to the first node, the one that swallows acknowledgements.
            SessionSettings("nodes-d"),
            rng=random.Random(1),
            credentials=mosquitto_broker.credentials("umpire"),
            publish_timeout=2,
        )
        async with transport:
            assert transport.node == Node(stuck.host, stuck.port)
            with pytest.raises(BrokerUnavailable):
                await transport.publish(topics.clock, b"never acknowledged")
            async with asyncio.timeout(30):
                while transport.connected.connections < 2:
                    await transport.connected.wait_lost()
                    await transport.connected.wait()
            assert transport.node == Node(live.host, live.port)
            await transport.publish(topics.clock, b"acknowledged")
