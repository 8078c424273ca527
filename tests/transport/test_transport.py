"""The transport with no broker to talk to: clear errors in bounded time, nothing left running."""

import asyncio
import random
import re

import pytest
from structlog.testing import capture_logs

from simulator.brokers.mosquitto import free_port
from simulator.transport import (
    Backoff,
    BrokerAddress,
    BrokerUnavailable,
    SessionSettings,
    Transport,
)


def _nowhere(*, wait: bool = False) -> Transport:
    # A port nobody listens on: every connect is refused at once.
    return Transport(
        BrokerAddress("127.0.0.1", free_port()),
        SessionSettings("drill-alpha"),
        rng=random.Random(1),
        backoff=Backoff(initial=0.02, maximum=0.1),
        connect_timeout=0.3,
        wait=wait,
    )


async def test_entering_without_a_broker_fails_after_the_connect_timeout() -> None:
    """Entering waits `connect_timeout` for a first connection, then raises BrokerUnavailable."""
    with pytest.raises(BrokerUnavailable, match=re.escape("could not connect within 0.3 s")):
        async with _nowhere(wait=True):
            pass


async def test_publish_without_a_broker_fails_within_its_time() -> None:
    """With no connection for the whole time allowed, publish raises BrokerUnavailable."""
    async with _nowhere() as transport:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(BrokerUnavailable, match=re.escape("publish to 'a/b' within 0.4 s")):
            await transport.publish("a/b", b"x", within=0.4)
        assert 0.35 < loop.time() - started < 1.0
        assert not transport.connected.is_set()


async def test_reconnect_attempts_back_off_and_log() -> None:
    """Failed connects are retried with growing, capped, jittered delays, each one logged."""
    with capture_logs() as logs:
        async with _nowhere():
            await asyncio.sleep(0.6)
    delays = [e["delay"] for e in logs if e["event"] == "reconnect_scheduled"]
    assert len(delays) >= 4
    assert all(0 <= d <= 0.1 for d in delays)
    attempts = [e["attempt"] for e in logs if e["event"] == "reconnect_scheduled"]
    assert attempts == list(range(1, len(attempts) + 1))
    assert all(e["client_id"] == "drill-alpha" for e in logs)


async def test_transport_tasks_are_named_after_the_client() -> None:
    """The supervisor runs as a named task, `transport[<client id>].supervisor`."""
    async with _nowhere():
        names = {task.get_name() for task in asyncio.all_tasks()}
        assert "transport[drill-alpha].supervisor" in names


async def test_a_transport_is_entered_once() -> None:
    """A transport is a one-shot context manager."""
    transport = _nowhere()
    async with transport:
        pass
    with pytest.raises(RuntimeError, match="only once"):
        await transport.__aenter__()


async def test_arguments_are_checked_before_anything_is_sent() -> None:
    """Bad QoS, non-bytes payloads and empty subscriptions are refused at once."""
    async with _nowhere() as transport:
        with pytest.raises(ValueError, match="QoS"):
            await transport.publish("a/b", b"x", qos=3)
        with pytest.raises(TypeError, match="bytes"):
            await transport.publish("a/b", "text")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="at least one"):
            await transport.subscribe()
