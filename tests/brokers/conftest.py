"""A NATS cluster per test, on free loopback ports in the test's own directory."""

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulator.brokers import NatsCluster, exercise_principals
from simulator.messaging.topics import Topics

PARTIES = ("alpha", "bravo", "charlie")


@pytest.fixture
async def cluster(topics: Topics, tmp_path: Path) -> AsyncIterator[NatsCluster]:
    """Three nats-server nodes with the accounts of the umpire, observer, controller and PARTIES."""
    assert shutil.which("nats-server") or Path("/usr/sbin/nats-server").exists(), (
        "nats-server is missing: apt-get install nats-server (scripts/check does)"
    )
    async with NatsCluster(
        topics, exercise_principals(PARTIES), workdir=tmp_path / "nats"
    ) as started:
        yield started
