"""Mosquitto specifics: MQTT 5, restarts, the size limit, and launching it with clear errors."""

import asyncio
import os
import re
import socket
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from simulator.brokers import BrokerStartError, MosquittoBroker, exercise_principals
from simulator.brokers.mosquitto import DEFAULT_MESSAGE_SIZE_LIMIT
from simulator.messaging.topics import Topics
from simulator.transport import BrokerUnavailable, PayloadTooLarge, Transport

from .helpers import PARTIES, TEST_BACKOFF, Connector, quiet, receive, receive_all


async def test_round_trip_over_mqtt5(
    mosquitto_broker: MosquittoBroker, topics: Topics, connect: Connector
) -> None:
    """Over MQTT 5 a party's QoS 1 submission reaches the umpire intact."""
    umpire = await connect(mosquitto_broker, "umpire", protocol="5")
    alpha = await connect(mosquitto_broker, "alpha", protocol="5")
    await umpire.subscribe(topics.all_submissions)
    await alpha.publish(topics.submit("alpha"), b"over v5")
    [message] = await receive(umpire, 1)
    assert (message.topic, message.payload, message.qos) == (topics.submit("alpha"), b"over v5", 1)


async def test_mqtt5_persistent_session_keeps_offline_messages(
    mosquitto_broker: MosquittoBroker, topics: Topics, connect: Connector
) -> None:
    """MQTT 5 with clean_start=False and an expiry keeps all 20 messages for an offline client."""
    async with connect.transport(mosquitto_broker, "umpire", protocol="5") as umpire:
        await umpire.subscribe(topics.all_submissions)
    alpha = await connect(mosquitto_broker, "alpha", protocol="5")
    for n in range(20):
        await alpha.publish(topics.submit("alpha"), str(n).encode())
    async with connect.transport(mosquitto_broker, "umpire", protocol="5") as umpire:
        got = await receive(umpire, 20)
        assert [m.payload for m in got] == [str(n).encode() for n in range(20)]
        assert await quiet(umpire) == []


async def test_transports_ride_out_a_restart_mid_stream(
    mosquitto_broker: MosquittoBroker, topics: Topics, connect: Connector
) -> None:
    """Mosquitto stopped and restarted mid-stream: clients reconnect by themselves, nothing lost."""
    with capture_logs() as logs:
        umpire = await connect(mosquitto_broker, "umpire")
        alpha = await connect(mosquitto_broker, "alpha")
        await umpire.subscribe(topics.all_submissions)

        async def stream() -> None:
            for n in range(40):
                await alpha.publish(topics.submit("alpha"), str(n).encode(), within=10)
                await asyncio.sleep(0.01)

        publisher = asyncio.create_task(stream())
        got = await receive(umpire, 10)
        old_pid = mosquitto_broker.pid
        await mosquitto_broker.stop()
        await asyncio.wait_for(alpha.connected.wait_lost(), 5)
        await asyncio.sleep(0.3)  # several reconnect attempts fail meanwhile
        assert not publisher.done()
        await mosquitto_broker.start()
        await asyncio.wait_for(publisher, 10)  # every publish returned, none raised
        missing = {str(n).encode() for n in range(40)} - {m.payload for m in got}
        got += await receive_all(umpire, missing) + await quiet(umpire)

    assert mosquitto_broker.pid != old_pid
    assert alpha.connected.connections == umpire.connected.connections == 2
    # At-least-once: a publish cut off by the stop may be sent again, and
    # Mosquitto redelivers what it had not seen acknowledged. Nothing is lost
    # and first arrivals keep the publishing order.
    first_seen = list(dict.fromkeys(int(m.payload) for m in got))
    assert first_seen == list(range(40))
    for client in (alpha, umpire):
        events = [e for e in logs if e.get("client_id") == client.client_id]
        names = [e["event"] for e in events]
        assert names.count("broker_connected") == 2
        assert "broker_disconnected" in names
        delays = [e["delay"] for e in events if e["event"] == "reconnect_scheduled"]
        assert len(delays) >= 2  # at least one attempt failed while the broker was down
        assert all(0 <= d <= TEST_BACKOFF.maximum for d in delays)


async def test_messages_queued_for_an_offline_client_survive_a_restart(
    mosquitto_broker: MosquittoBroker, topics: Topics, connect: Connector
) -> None:
    """Messages queued for an offline persistent session survive SIGTERM and restart, once each."""
    async with connect.transport(mosquitto_broker, "umpire") as umpire:
        await umpire.subscribe(topics.all_submissions)
    async with connect.transport(mosquitto_broker, "alpha") as alpha:
        for n in range(20):
            await alpha.publish(topics.submit("alpha"), str(n).encode())
    port = mosquitto_broker.address.port
    await mosquitto_broker.restart()
    assert mosquitto_broker.address.port == port
    async with connect.transport(mosquitto_broker, "umpire") as umpire:
        got = await receive(umpire, 20)
        assert [m.payload for m in got] == [str(n).encode() for n in range(20)]
        assert await quiet(umpire) == []


async def test_oversize_payload_at_mqtt311_is_acknowledged_then_dropped(
    mosquitto_broker: MosquittoBroker, topics: Topics, connect: Connector
) -> None:
    """At MQTT 3.1.1 Mosquitto acknowledges a payload over message_size_limit and drops it."""
    limit = DEFAULT_MESSAGE_SIZE_LIMIT
    umpire = await connect(mosquitto_broker, "umpire")
    # A transport that does not know the limit, as a careless client would be.
    made = connect.transport(mosquitto_broker, "alpha")
    alpha = await connect.enter(
        Transport(
            made.address,
            made.session,
            rng=connect.rng,
            credentials=mosquitto_broker.credentials("alpha"),
        )
    )
    await umpire.subscribe(topics.all_submissions)
    await alpha.publish(topics.submit("alpha"), b"x" * (limit + 1))  # "succeeds": PUBACK
    await alpha.publish(topics.submit("alpha"), b"y" * limit)
    [message] = await receive(umpire, 1)
    assert message.payload == b"y" * limit
    assert alpha.connected.connections == 1  # the connection was not even disturbed


async def test_oversize_payload_at_mqtt5_breaks_the_connection_every_time(
    mosquitto_broker: MosquittoBroker, topics: Topics, connect: Connector
) -> None:
    """At MQTT 5 an oversize publish breaks the connection; the transport gives up after 3 tries."""
    made = connect.transport(mosquitto_broker, "alpha", protocol="5")
    alpha = await connect.enter(
        Transport(
            made.address,
            made.session,
            rng=connect.rng,
            credentials=mosquitto_broker.credentials("alpha"),
            backoff=TEST_BACKOFF,
        )
    )
    with pytest.raises(BrokerUnavailable, match="broke during each of 3 attempts"):
        await alpha.publish(
            topics.submit("alpha"), b"x" * (DEFAULT_MESSAGE_SIZE_LIMIT + 1), within=10
        )
    await alpha.connected.wait()
    await alpha.publish(topics.submit("alpha"), b"small")  # the next publish is fine


async def test_the_size_limit_is_enforced_before_sending(
    mosquitto_broker: MosquittoBroker, topics: Topics, connect: Connector
) -> None:
    """A transport made for a broker refuses a payload over the broker's limit before sending it."""
    alpha = await connect(mosquitto_broker, "alpha")
    with pytest.raises(PayloadTooLarge, match=f"limit of {DEFAULT_MESSAGE_SIZE_LIMIT} bytes"):
        await alpha.publish(topics.submit("alpha"), b"x" * (DEFAULT_MESSAGE_SIZE_LIMIT + 1))
    await alpha.publish(topics.submit("alpha"), b"x" * DEFAULT_MESSAGE_SIZE_LIMIT)


async def test_stop_and_kill_end_the_process(mosquitto_broker: MosquittoBroker) -> None:
    """stop() (SIGTERM) and kill() (SIGKILL) end the process; start() brings it back."""
    for end in (mosquitto_broker.stop, mosquitto_broker.kill):
        pid = mosquitto_broker.pid
        assert pid is not None
        await end()
        assert mosquitto_broker.pid is None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        await mosquitto_broker.start()
    assert mosquitto_broker.pid is not None


async def test_generated_config_is_locked_down(mosquitto_broker: MosquittoBroker) -> None:
    """The config binds loopback, refuses anonymous clients and keeps what RELIABILITY asks."""
    config = mosquitto_broker.config_file.read_text()
    settings = {
        line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1]
        for line in config.splitlines()
        if line and not line.startswith("#")
    }
    assert settings["listener"] == f"{mosquitto_broker.address.port} 127.0.0.1"
    assert settings["allow_anonymous"] == "false"
    assert settings["set_tcp_nodelay"] == "true"
    assert settings["persistence"] == "true"
    assert settings["autosave_interval"] == "1"
    assert settings["autosave_on_changes"] == "true"
    assert settings["max_queued_messages"] == "1000000"
    assert settings["message_size_limit"] == str(DEFAULT_MESSAGE_SIZE_LIMIT)
    assert "${" not in config
    for private in (mosquitto_broker.password_file,):
        assert private.stat().st_mode & 0o077 == 0
    passwords = mosquitto_broker.password_file.read_text()
    assert mosquitto_broker.credentials("alpha").password not in passwords
    assert re.search(r"^alpha:\$7\$", passwords, re.MULTILINE)  # hashed by mosquitto_passwd


async def test_a_missing_binary_is_named_with_the_fix(tmp_path: Path, topics: Topics) -> None:
    """Without the Mosquitto binary, starting says which path is missing and how to install it."""
    broker = MosquittoBroker(
        topics, exercise_principals(PARTIES), workdir=tmp_path, binary=tmp_path / "mosquitto"
    )
    with pytest.raises(BrokerStartError, match=r"not found at .*apt-get install mosquitto"):
        await broker.start()


async def test_a_broken_config_fails_with_mosquittos_own_words(
    tmp_path: Path, topics: Topics
) -> None:
    """When Mosquitto refuses its config, the error carries its stderr."""
    template = tmp_path / "bad.conf"
    template.write_text("listener ${PORT} ${BIND_ADDRESS}\nno_such_option true\n")
    broker = MosquittoBroker(
        topics, exercise_principals(PARTIES), workdir=tmp_path / "run", template=template
    )
    with pytest.raises(BrokerStartError, match="no_such_option") as failed:
        await broker.start()
    assert "exited with status" in str(failed.value)
    assert broker.pid is None


async def test_a_taken_port_is_reported(tmp_path: Path, topics: Topics) -> None:
    """Asked for a port someone else listens on, Mosquitto's start fails and says so."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = MosquittoBroker(topics, exercise_principals(PARTIES), workdir=tmp_path, port=port)
        with pytest.raises(BrokerStartError, match=f"127.0.0.1:{port}: port in use"):
            await broker.start()
