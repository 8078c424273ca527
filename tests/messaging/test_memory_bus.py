"""The in-memory hub routes like an MQTT broker: filters, one copy per client, order, ACL."""

import asyncio

import pytest

from simulator.brokers.access import grants_for
from simulator.messaging.bus import Bus
from simulator.messaging.memory import (
    Delivered,
    MemoryBus,
    MemoryHub,
    check_filter,
    check_topic,
    matches,
)
from simulator.messaging.topics import Topics

TOPICS = Topics("drill")


async def drained(bus: MemoryBus) -> list[Delivered]:
    """Everything queued for `bus` so far: closing it ends `messages()` once they are read."""
    await bus.close()
    return [m async for m in bus.messages()]


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/b", "a/b/c", False),
        ("a/b/c", "a/b", False),
        ("a/#", "a", True),
        ("a/#", "a/b", True),
        ("a/#", "a/b/c", True),
        ("a/#", "a/", True),
        ("a/#", "ab", False),
        ("a/#", "b/a", False),
        ("a/b/#", "a", False),
        ("#", "a", True),
        ("#", "a/b/c", True),
        ("#", "/a", True),
        ("+", "a", True),
        ("+", "a/b", False),
        ("+", "/a", False),
        ("+/+", "/a", True),
        ("/+", "/a", True),
        ("a/+", "a/b", True),
        ("a/+", "a", False),
        ("a/+", "a/", True),
        ("a/+", "a/b/c", False),
        ("a/+/c", "a//c", True),
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("+/b/#", "a/b", True),
        ("+/b/#", "a/b/c/d", True),
        ("#", "$SYS/broker", False),
        ("+/broker", "$SYS/broker", False),
        ("$SYS/#", "$SYS/broker", True),
        ("$SYS/+", "$SYS/broker", True),
        ("A/b", "a/b", False),
    ],
)
def test_filter_matching(topic_filter: str, topic: str, *, expected: bool) -> None:
    """Filters match as MQTT 3.1.1 says: `+` one level (empty too), `#` the parent and below."""
    assert check_filter(topic_filter) == topic_filter
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize("topic_filter", ["", "a/#/b", "a#", "a/b#", "a+/b", "a/+b", "x\x00"])
def test_invalid_filters_are_refused(topic_filter: str) -> None:
    """A filter with a wildcard that is not a whole level, `#` not last, or empty is refused."""
    with pytest.raises(ValueError, match=r"filter|level"):
        check_filter(topic_filter)


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "+", "x\x00"])
def test_wildcards_are_not_topic_names(topic: str) -> None:
    """Nobody publishes to an empty topic or one with a wildcard or NUL in it."""
    with pytest.raises(ValueError, match="not a topic name"):
        check_topic(topic)


async def test_a_memory_bus_is_a_bus() -> None:
    """A MemoryBus satisfies the `Bus` protocol (mypy checks this assignment)."""
    bus: Bus = MemoryHub().connect("alpha")
    await bus.subscribe("a/#")
    await bus.publish("a/b", b"x")
    message = await anext(bus.messages())
    assert (message.topic, message.payload) == ("a/b", b"x")


async def test_a_message_reaches_a_client_once_however_many_filters_match() -> None:
    """A client whose filters overlap receives one copy, at the highest QoS among them."""
    hub = MemoryHub()
    reader, writer = hub.connect("reader"), hub.connect("writer")
    await reader.subscribe("a/#", qos=0)
    await reader.subscribe("a/+", "a/b", qos=1)
    await writer.publish("a/b", b"once", qos=2)
    assert await drained(reader) == [Delivered("a/b", b"once", qos=1, retain=False)]


async def test_every_subscribed_client_gets_its_own_copy() -> None:
    """Each matching client receives a message, the publisher too; others receive nothing."""
    hub = MemoryHub()
    alpha, beta, gamma = hub.connect("alpha"), hub.connect("beta"), hub.connect("gamma")
    await alpha.subscribe("x/#")
    await beta.subscribe("x/+")
    await gamma.subscribe("y/#")
    await alpha.publish("x/1", b"hello")
    assert [m.payload for m in await drained(alpha)] == [b"hello"]
    assert [m.payload for m in await drained(beta)] == [b"hello"]
    assert await drained(gamma) == []


async def test_publish_returns_once_the_message_is_queued() -> None:
    """When publish returns, every current subscriber already holds the message."""
    hub = MemoryHub()
    reader, writer = hub.connect("reader"), hub.connect("writer")
    await reader.subscribe("t")
    await writer.publish("t", b"queued")
    await writer.close()
    assert [m.payload for m in await drained(reader)] == [b"queued"]
    assert [p.payload for p in hub.published] == [b"queued"]


async def test_each_client_receives_in_publish_order() -> None:
    """Messages reach a client in the order they were published, across topics and publishers."""
    hub = MemoryHub()
    reader, one, two = hub.connect("reader"), hub.connect("one"), hub.connect("two")
    await reader.subscribe("a/+", "b")
    sent = [(one, "a/x", b"1"), (two, "b", b"2"), (one, "a/y", b"3"), (two, "a/x", b"4")]
    for bus, topic, payload in sent:
        await bus.publish(topic, payload)
    assert [(m.topic, m.payload) for m in await drained(reader)] == [
        (topic, payload) for _, topic, payload in sent
    ]


async def test_a_consumer_waiting_for_messages_gets_them_as_they_arrive() -> None:
    """An iterator waiting on an empty queue wakes for each arrival, in order."""
    hub = MemoryHub()
    reader, writer = hub.connect("reader"), hub.connect("writer")
    await reader.subscribe("t")

    async def read_three() -> list[bytes]:
        got = []
        async for message in reader.messages():
            got.append(message.payload)
            if len(got) == 3:
                break
        return got

    async with asyncio.timeout(2):
        reading = asyncio.create_task(read_three(), name="test.reader")
        await asyncio.sleep(0)
        for payload in (b"1", b"2", b"3"):
            await writer.publish("t", payload)
        assert await reading == [b"1", b"2", b"3"]


async def test_retained_messages_are_sent_to_new_subscriptions() -> None:
    """A subscription gets the last retained message of each topic it matches, flagged retain."""
    hub = MemoryHub()
    writer = hub.connect("writer")
    await writer.publish("clock", b"old", retain=True)
    await writer.publish("clock", b"new", retain=True)
    await writer.publish("other", b"not retained")
    reader = hub.connect("reader")
    await reader.subscribe("clock", "#")
    await writer.publish("clock", b"live", retain=True)
    assert await drained(reader) == [
        Delivered("clock", b"new", qos=1, retain=True),
        Delivered("clock", b"live", qos=1, retain=False),
    ]


async def test_an_empty_retained_message_clears_the_topic() -> None:
    """A retained publish with an empty payload removes what was retained on that topic."""
    hub = MemoryHub()
    writer = hub.connect("writer")
    await writer.publish("clock", b"tick", retain=True)
    await writer.publish("clock", b"", retain=True)
    reader = hub.connect("reader")
    await reader.subscribe("clock")
    assert await drained(reader) == []


async def test_a_denied_publish_is_dropped_silently() -> None:
    """A publish outside the client's write grants raises nothing and reaches nobody."""
    hub = MemoryHub()
    umpire = hub.connect("umpire", access=grants_for(TOPICS, "umpire"))
    alpha = hub.connect("alpha", access=grants_for(TOPICS, "alpha"))
    await umpire.subscribe(TOPICS.all_submissions)
    await alpha.publish(TOPICS.submit("bravo"), b"spoofed", retain=True)
    await alpha.publish(TOPICS.submit("alpha"), b"genuine")
    assert [m.payload for m in await drained(umpire)] == [b"genuine"]
    assert [(d.sender, d.payload) for d in hub.denied] == [("alpha", b"spoofed")]
    assert [p.payload for p in hub.published] == [b"genuine"]


async def test_a_client_receives_only_what_its_read_grants_allow() -> None:
    """A subscription wider than the read grants is accepted but delivers only granted topics."""
    hub = MemoryHub()
    umpire = hub.connect("umpire", access=grants_for(TOPICS, "umpire"))
    alpha = hub.connect("alpha", access=grants_for(TOPICS, "alpha"))
    await alpha.subscribe(TOPICS.tree)
    for topic in (TOPICS.log("bravo", "umpire"), TOPICS.inbox("bravo"), TOPICS.clock):
        await umpire.publish(topic, topic.encode())
    await umpire.publish(TOPICS.log("alpha", "bravo"), b"mine", retain=True)
    late = hub.connect("late-alpha", access=grants_for(TOPICS, "alpha"))
    await late.subscribe(TOPICS.tree)
    assert [m.topic for m in await drained(alpha)] == [TOPICS.clock, TOPICS.log("alpha", "bravo")]
    assert [m.topic for m in await drained(late)] == [TOPICS.log("alpha", "bravo")]


async def test_a_dropped_delivery_is_lost_once_and_a_resend_gets_through() -> None:
    """A drop rule loses the next matching delivery only; the same message sent again arrives."""
    hub = MemoryHub()
    umpire, alpha, beta = hub.connect("umpire"), hub.connect("alpha"), hub.connect("beta")
    await umpire.subscribe(TOPICS.all_submissions)
    await beta.subscribe(TOPICS.all_submissions)
    hub.drop(lambda client, message: client == "umpire" and message.payload == b"seq 1")
    await alpha.publish(TOPICS.submit("alpha"), b"seq 1")
    await alpha.publish(TOPICS.submit("alpha"), b"seq 1")
    assert [m.payload for m in await drained(umpire)] == [b"seq 1"]
    assert [m.payload for m in await drained(beta)] == [b"seq 1", b"seq 1"]
    assert [(client, m.payload) for client, m in hub.lost] == [("umpire", b"seq 1")]
    assert len(hub.published) == 2


async def test_closing_ends_iteration_after_what_was_queued() -> None:
    """`close` ends `messages()`: a waiting consumer stops, after reading what was queued."""
    hub = MemoryHub()
    reader, writer = hub.connect("reader"), hub.connect("writer")
    await reader.subscribe("t")
    await writer.publish("t", b"before")

    async def read_all() -> list[bytes]:
        return [m.payload async for m in reader.messages()]

    async with asyncio.timeout(2):
        reading = asyncio.create_task(read_all(), name="test.reader")
        await asyncio.sleep(0)
        await reader.close()
        await writer.publish("t", b"after")
        assert await reading == [b"before"]


async def test_a_closed_bus_refuses_to_publish_and_its_name_can_connect_again() -> None:
    """After close a bus cannot publish or subscribe; a new client may take its name."""
    hub = MemoryHub()
    async with hub.connect("alpha") as alpha:
        with pytest.raises(ValueError, match="already connected"):
            hub.connect("alpha")
    with pytest.raises(RuntimeError, match="closed"):
        await alpha.publish("t", b"x")
    with pytest.raises(RuntimeError, match="closed"):
        await alpha.subscribe("t")
    assert hub.connect("alpha").client == "alpha"


async def test_bad_arguments_are_refused() -> None:
    """A bad QoS, a non-bytes payload, a wildcard topic or no filter at all raises at once."""
    bus = MemoryHub().connect("alpha")
    with pytest.raises(ValueError, match="QoS"):
        await bus.publish("t", b"x", qos=3)
    with pytest.raises(TypeError, match="bytes"):
        await bus.publish("t", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="topic name"):
        await bus.publish("t/#", b"x")
    with pytest.raises(ValueError, match="at least one"):
        await bus.subscribe()
    with pytest.raises(ValueError, match="'#'"):
        await bus.subscribe("a/#/b")
