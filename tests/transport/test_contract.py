"""What every broker must do for the simulator: run on the embedded broker and on Mosquitto."""

import asyncio
import statistics

from simulator.brokers import Broker
from simulator.messaging.topics import Topics
from simulator.transport import (
    Credentials,
    SubscriptionRefused,
)
from tests.runtime.seats import until

from .helpers import BAD_CREDENTIALS, Connector, assert_refused, quiet, receive, receive_all


async def test_round_trip_at_qos1(broker: Broker, topics: Topics, connect: Connector) -> None:
    """A party's QoS 1 submission reaches the umpire over MQTT 3.1.1, topic and bytes intact."""
    umpire = await connect(broker, "umpire")
    alpha = await connect(broker, "alpha")
    await umpire.subscribe(topics.all_submissions)
    await alpha.publish(topics.submit("alpha"), b'{"kind":"submission"}')
    [message] = await receive(umpire, 1)
    assert message.topic == topics.submit("alpha")
    assert message.payload == b'{"kind":"submission"}'
    assert message.qos == 1


async def test_persistent_subscriber_gets_what_was_sent_while_offline(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """A persistent subscriber that was offline gets all 20 QoS 1 messages once, in order."""
    async with connect.transport(broker, "umpire") as umpire:
        await umpire.subscribe(topics.all_submissions)
    alpha = await connect(broker, "alpha")
    for n in range(20):
        await alpha.publish(topics.submit("alpha"), str(n).encode())
    # Same client id, no new SUBSCRIBE: the broker kept session and subscription.
    async with connect.transport(broker, "umpire") as umpire:
        got = await receive(umpire, 20)
        assert [m.payload for m in got] == [str(n).encode() for n in range(20)]
        assert await quiet(umpire) == []


async def test_a_clean_session_gets_nothing_sent_while_offline(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """A clean session's subscription ends with its connection: nothing is queued for it."""
    async with connect.transport(broker, "umpire", persistent=False) as umpire:
        await umpire.subscribe(topics.all_submissions)
    alpha = await connect(broker, "alpha")
    await alpha.publish(topics.submit("alpha"), b"lost")
    async with connect.transport(broker, "umpire", persistent=False) as umpire:
        assert await quiet(umpire) == []


@BAD_CREDENTIALS
async def test_clients_without_valid_credentials_are_refused(
    broker: Broker, connect: Connector, credentials: Credentials | None
) -> None:
    """Anonymous clients, wrong passwords and unknown users are refused at CONNECT."""
    await assert_refused(broker, connect, credentials)


async def test_tcp_nodelay_is_set_and_round_trips_are_fast(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """TCP_NODELAY is on (read back with getsockopt); a request/reply takes milliseconds, not 88."""
    umpire = await connect(broker, "umpire")
    alpha = await connect(broker, "alpha")
    assert umpire.tcp_nodelay()
    assert alpha.tcp_nodelay()
    await umpire.subscribe(topics.all_submissions)
    await alpha.subscribe(topics.inbox("alpha"))
    loop = asyncio.get_running_loop()
    rounds: list[float] = []
    for n in range(20):
        started = loop.time()
        await alpha.publish(topics.submit("alpha"), str(n).encode())
        await receive(umpire, 1)
        await umpire.publish(topics.inbox("alpha"), str(n).encode())
        await receive(alpha, 1)
        rounds.append(loop.time() - started)
    # Nagle plus delayed ACK cost ~88 ms per round trip here (RELIABILITY.md).
    assert statistics.median(rounds) < 0.04, rounds


async def test_a_party_cannot_publish_as_another(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """A party's publish to another party's submit topic never reaches the umpire."""
    umpire = await connect(broker, "umpire")
    alpha = await connect(broker, "alpha")
    await umpire.subscribe(topics.all_submissions)
    # Both brokers acknowledge the denied publish, so the sender cannot tell.
    await alpha.publish(topics.submit("bravo"), b"spoofed")
    await alpha.publish(topics.report("bravo"), b"spoofed")
    await alpha.publish(topics.submit("alpha"), b"genuine")
    [message] = await receive(umpire, 1)
    assert (message.topic, message.payload) == (topics.submit("alpha"), b"genuine")
    assert await quiet(umpire) == []


async def test_a_party_reads_only_what_concerns_it(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """A party receives its own log, inbox and the clock, and nothing of other parties."""
    umpire = await connect(broker, "umpire")
    alpha = await connect(broker, "alpha")
    await alpha.subscribe(*topics.party_filters("alpha"))
    # The embedded broker refuses these subscriptions in its SUBACK; Mosquitto
    # grants them but delivers nothing that its ACL does not let alpha read.
    for prying in (topics.log("bravo", "umpire"), topics.inbox("bravo"), topics.tree):
        try:
            await alpha.subscribe(prying)
        except SubscriptionRefused:
            assert broker.name == "embedded"
        else:
            assert broker.name == "mosquitto"
    for topic in (
        topics.log("bravo", "umpire"),
        topics.log("umpire", "bravo"),
        topics.inbox("bravo"),
        topics.submit("bravo"),
    ):
        await umpire.publish(topic, b"not for alpha")
    mine = [
        topics.log("alpha", "bravo"),
        topics.log("bravo", "alpha"),
        topics.inbox("alpha"),
        topics.clock,
    ]
    for topic in mine:
        await umpire.publish(topic, b"for alpha")
    got = await receive(alpha, len(mine)) + await quiet(alpha)
    # On Mosquitto the `#` subscription matches too, and both copies are alpha's.
    assert {m.topic for m in got} == set(mine)
    assert {m.payload for m in got} == {b"for alpha"}


async def test_observer_reads_everything_and_writes_nothing(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """The observer sees the whole exercise tree; what it publishes goes nowhere."""
    observer = await connect(broker, "observer")
    umpire = await connect(broker, "umpire")
    alpha = await connect(broker, "alpha")
    await observer.subscribe(topics.tree)
    await umpire.subscribe(topics.tree)
    await observer.publish(topics.clock, b"forged clock")
    await alpha.publish(topics.submit("alpha"), b"hello")
    [seen_by_umpire] = await receive(umpire, 1)
    assert seen_by_umpire.payload == b"hello"
    [seen_by_observer] = await receive(observer, 1)
    assert seen_by_observer.topic == topics.submit("alpha")


async def test_controller_writes_control_only(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """The controller's commands reach the umpire on `control`; elsewhere they go nowhere."""
    umpire = await connect(broker, "umpire")
    controller = await connect(broker, "controller")
    await umpire.subscribe(topics.tree)
    await controller.publish(topics.clock, b"forged clock")
    await controller.publish(topics.control, b"pause")
    [message] = await receive(umpire, 1)
    assert (message.topic, message.payload) == (topics.control, b"pause")


async def test_a_slow_consumer_loses_nothing(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """Past a 2-message backlog (warned about, not dropped), all 50 messages arrive in order."""
    umpire = await connect(broker, "umpire", max_buffered=2)
    alpha = await connect(broker, "alpha")
    await umpire.subscribe(topics.all_submissions)
    for n in range(50):
        await alpha.publish(topics.submit("alpha"), str(n).encode())
    await asyncio.sleep(0.2)  # all 50 are now held, far past the backlog warned about
    got = await receive(umpire, 50)
    assert [m.payload for m in got] == [str(n).encode() for n in range(50)]


async def test_messages_end_after_the_transport_closes(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """What was received can still be read after closing; then the iteration ends."""
    alpha = await connect(broker, "alpha")
    async with connect.transport(broker, "umpire") as umpire:
        await umpire.subscribe(topics.all_submissions)
        await alpha.publish(topics.submit("alpha"), b"last words")
        await until(lambda: bool(umpire._inbound), seconds=30)  # arrived, not yet read
    assert [m.payload async for m in umpire.messages()] == [b"last words"]


async def test_a_consumer_that_stops_waiting_loses_nothing(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """Waits for the next message cut short by timeouts, again and again, take nothing away."""
    umpire = await connect(broker, "umpire")
    alpha = await connect(broker, "alpha")
    await umpire.subscribe(topics.all_submissions)

    async def publish() -> None:
        for n in range(50):
            await alpha.publish(topics.submit("alpha"), str(n).encode())

    publisher = asyncio.create_task(publish())
    got: list[bytes] = []
    async with asyncio.timeout(10):
        while len(got) < 50:
            # Each wait is cancelled by its timeout, often just as a message lands.
            got += [m.payload for m in await quiet(umpire, within=0.001)]
    await publisher
    assert got == [str(n).encode() for n in range(50)]


async def test_what_a_publisher_had_acknowledged_arrives_though_it_left_at_once(
    broker: Broker, topics: Topics, connect: Connector
) -> None:
    """A client (a clean session, as `mosquitto_pub` connects) publishes 200 QoS 1 messages
    at once and disconnects as soon as each is acknowledged: all 200 reach the subscriber.
    Before, amqtt took in a client's messages one at a time after acknowledging them and
    stopped at its disconnect: about half were acknowledged and never delivered, so a
    burst of submissions from a client that then left was half lost, unrecorded."""
    umpire = await connect(broker, "umpire")
    await umpire.subscribe(topics.all_submissions)
    sent = {b"burst-%d" % n for n in range(200)}
    async with connect.transport(broker, "alpha", persistent=False) as alpha:
        await asyncio.gather(*(alpha.publish(topics.submit("alpha"), p) for p in sent))
    got = await receive_all(umpire, sent, within=30)
    assert {m.payload for m in got} == sent
