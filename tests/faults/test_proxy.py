"""The fault proxy itself, over real brokers, and RELIABILITY item 12 (half-open TCP)."""

import asyncio

import pytest

from simulator.brokers import Broker, MosquittoBroker
from simulator.faults import FaultProxy, ProxiedBroker, Rule
from simulator.faults.proxy import PUBACK
from simulator.messaging.topics import Topics
from simulator.transport import BrokerUnavailable
from tests.transport.helpers import Connector, quiet, receive


async def test_item12_half_open_connection_is_detected_and_the_publish_sent_again(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """A connection that goes silent without a close (black-holed) is found dead by the
    keepalive, and a publish that vanished into it is sent again on the next connection.

    paho declares the connection dead when a PINGREQ goes unanswered for one more
    keepalive, checked once a second: within 2 x keepalive + 1 s, not RELIABILITY's
    1.5 x (docs/reliability.md says so)."""
    keepalive = 2
    async with FaultProxy(broker.address) as proxy:
        umpire = await connect(broker, "umpire")
        await umpire.subscribe(topics.all_submissions)
        alpha = await connect(ProxiedBroker(broker, proxy), "alpha", keepalive=keepalive)
        assert proxy.blackhole("alpha") == 1
        loop = asyncio.get_running_loop()
        went_silent = loop.time()
        publish = asyncio.create_task(alpha.publish(topics.submit("alpha"), b"outstanding"))
        await asyncio.wait_for(alpha.connected.wait_lost(), 2 * keepalive + 3)
        detected = loop.time() - went_silent
        await asyncio.wait_for(publish, 10)
        [message] = await receive(umpire, 1, within=5)
    assert message.payload == b"outstanding"
    assert detected <= 2 * keepalive + 1.5, detected
    assert proxy.stats["blackholed"] >= 1
    assert alpha.connected.connections == 2


async def test_pause_holds_every_packet_until_resumed(
    embedded_broker: Broker, topics: Topics, connect: Connector
) -> None:
    """While paused, a publish waits for its PUBACK; on resume it completes and is delivered."""
    async with FaultProxy(embedded_broker.address) as proxy:
        umpire = await connect(embedded_broker, "umpire")
        await umpire.subscribe(topics.all_submissions)
        alpha = await connect(ProxiedBroker(embedded_broker, proxy), "alpha")
        proxy.pause()
        publish = asyncio.create_task(alpha.publish(topics.submit("alpha"), b"held"))
        assert await quiet(umpire, 0.5) == []
        assert not publish.done()
        proxy.resume()
        await asyncio.wait_for(publish, 5)
        [message] = await receive(umpire, 1)
    assert message.payload == b"held"


async def test_refused_and_cut_connections(
    embedded_broker: Broker, topics: Topics, connect: Connector
) -> None:
    """A refusing proxy is a broker that is gone; a cut connection comes back by itself."""
    async with FaultProxy(embedded_broker.address) as proxy:
        proxied = ProxiedBroker(embedded_broker, proxy)
        proxy.refuse(True)
        with pytest.raises(BrokerUnavailable):
            async with connect.transport(proxied, "alpha", connect_timeout=1.0):
                pass
        assert proxy.stats["refused"] >= 1
        proxy.refuse(False)
        alpha = await connect(proxied, "alpha", purpose="again")
        assert proxy.cut("alpha") == 1
        await asyncio.wait_for(alpha.connected.wait_lost(), 5)
        await asyncio.wait_for(alpha.connected.wait(), 5)
    assert alpha.connected.connections == 2


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_rules_pick_publishes_by_principal_and_topic_at_both_protocol_levels(
    mosquitto_broker: MosquittoBroker, topics: Topics, connect: Connector, protocol: str
) -> None:
    """The proxy reads CONNECT and PUBLISH at MQTT 3.1.1 and 5: a duplicate rule aimed at
    alpha's submissions repeats exactly those, and an ack-and-drop rule loses one quietly."""
    async with FaultProxy(mosquitto_broker.address) as proxy:
        proxied = ProxiedBroker(mosquitto_broker, proxy)
        umpire = await connect(mosquitto_broker, "umpire", protocol=protocol)  # type: ignore[arg-type]
        await umpire.subscribe(topics.all_submissions, topics.all_reports)
        alpha = await connect(proxied, "alpha", protocol=protocol)  # type: ignore[arg-type]
        twice = proxy.add(Rule("duplicate", "up", "alpha", topic=topics.submit("alpha")))
        lost = proxy.add(Rule("ack_and_drop", "up", "alpha", topic=topics.report("alpha")))
        observed = proxy.add(Rule("delay", "down", "alpha", kind=PUBACK, seconds=0.01, count=None))
        await alpha.publish(topics.report("alpha"), b"lost")
        await alpha.publish(topics.submit("alpha"), b"twice")
        got = await receive(umpire, 2)
        assert await quiet(umpire) == []
        [link] = proxy.links
    assert [m.payload for m in got] == [b"twice", b"twice"]
    assert (twice.hits, lost.hits) == (1, 1)
    assert observed.hits == 1  # the broker's PUBACK for "twice"; "lost" was acked by the proxy
    assert (link.principal, link.level) == ("alpha", 5 if protocol == "5" else 4)
