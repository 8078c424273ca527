"""The embedded broker (amqtt): what it enforces, what it lacks, and that it stops cleanly."""

import asyncio
import random
import re
from pathlib import Path

import pytest

from simulator.brokers import (
    EmbeddedBroker,
    UnsupportedProtocol,
    exercise_principals,
    transport_for,
)
from simulator.messaging.topics import Topics
from simulator.transport import BrokerUnavailable, SessionSettings, Transport

from .helpers import PARTIES, Connector, quiet, receive


async def test_mqtt5_is_refused_before_connecting(embedded_broker: EmbeddedBroker) -> None:
    """amqtt speaks MQTT 3.1.1 only; asking for MQTT 5 on it is refused up front."""
    session = SessionSettings("drill-alpha", protocol="5")
    with pytest.raises(UnsupportedProtocol, match="does not speak MQTT 5"):
        transport_for(embedded_broker, "alpha", session, rng=random.Random(1))


async def test_amqtt_never_answers_an_mqtt5_connect(embedded_broker: EmbeddedBroker) -> None:
    """An MQTT 5 CONNECT gets no CONNACK from amqtt, only a timeout: why we refuse up front."""
    mqtt5 = Transport(
        embedded_broker.address,
        SessionSettings("drill-alpha", protocol="5"),
        rng=random.Random(1),
        credentials=embedded_broker.credentials("alpha"),
        connect_timeout=0.3,
    )
    with pytest.raises(BrokerUnavailable, match="could not connect"):
        async with mqtt5:
            pass


async def test_payload_size_is_not_limited(
    embedded_broker: EmbeddedBroker, topics: Topics, connect: Connector
) -> None:
    """amqtt has no message size limit: a 1 MB payload goes through (the application must check)."""
    assert embedded_broker.message_size_limit is None
    umpire = await connect(embedded_broker, "umpire")
    alpha = await connect(embedded_broker, "alpha")
    await umpire.subscribe(topics.all_submissions)
    await alpha.publish(topics.submit("alpha"), b"x" * 1_000_000)
    [message] = await receive(umpire, 1)
    assert len(message.payload) == 1_000_000


async def test_stopping_closes_connections_that_never_said_connect(
    topics: Topics, tmp_path: Path
) -> None:
    """A peer stuck in the middle of CONNECT does not keep the broker from stopping cleanly."""
    async with EmbeddedBroker(topics, exercise_principals(PARTIES), workdir=tmp_path) as broker:
        reader, writer = await asyncio.open_connection("127.0.0.1", broker.address.port)
        writer.write(b"\x10\x20\x00\x04MQTT")  # a CONNECT header promising more than it sends
        await writer.drain()
        await asyncio.sleep(0.05)
    # The broker closed our socket; the autouse check finds no tasks left behind.
    assert await asyncio.wait_for(reader.read(), 1) == b""
    writer.close()


async def test_two_brokers_run_side_by_side_in_one_loop(topics: Topics, tmp_path: Path) -> None:
    """Embedded brokers run inside the caller's event loop, each on a port of its own."""
    accounts = exercise_principals(PARTIES)
    async with (
        EmbeddedBroker(topics, accounts, workdir=tmp_path / "one") as one,
        EmbeddedBroker(topics, accounts, workdir=tmp_path / "two") as two,
    ):
        assert one.address.port != two.address.port
        assert one.address.host == two.address.host == "127.0.0.1"


async def test_password_file_holds_only_private_hashes(embedded_broker: EmbeddedBroker) -> None:
    """The password file is readable by its owner only and holds Argon2 hashes, no passwords."""
    path = embedded_broker.password_file
    assert path.stat().st_mode & 0o077 == 0
    text = path.read_text()
    for principal in ("umpire", "observer", "controller", *PARTIES):
        assert embedded_broker.credentials(principal).password not in text
        assert re.search(rf"^{principal}:\$argon2id\$", text, re.MULTILINE)


async def test_receive_acl_stops_what_a_loose_subscribe_check_lets_through(
    embedded_broker: EmbeddedBroker, topics: Topics, connect: Connector
) -> None:
    """amqtt grants log/alpha/# against log/alpha/+; its receive ACL still filters deliveries."""
    umpire = await connect(embedded_broker, "umpire")
    alpha = await connect(embedded_broker, "alpha")
    await alpha.subscribe(f"{topics.base}/log/alpha/#")  # granted: `+` matches `#` in amqtt
    await umpire.publish(f"{topics.log('alpha', 'bravo')}/deeper", b"not in alpha's ACL")
    await umpire.publish(topics.log("alpha", "bravo"), b"alpha's")
    [message] = await receive(alpha, 1)
    assert message.payload == b"alpha's"
    assert await quiet(alpha) == []
