"""RabbitMQ's MQTT plugin by URL: an exercise, and a partitioned load run whose owner dies.

A private RabbitMQ node (tests/rabbitmq.py), one account for every principal as
an operator would give it (`ExternalBroker`), QoS 1 at most (`?max_qos=1`: the
3.x plugin takes no QoS 2). The standby of a killed partition owner connects
with the partition's persistent session, which RabbitMQ keeps as a durable
queue: what was submitted meanwhile reaches it.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.load import LoadOptions, run_load
from simulator.run.exercise import RunOptions, run_exercise
from simulator.scenario import load_scenario
from tests.brokers.test_partitions import _partitions_verify, killing_an_owner
from tests.eventlog.conftest import pg_url, run_schema
from tests.rabbitmq import private_rabbitmq

__all__ = ["pg_url", "run_schema"]

SCENARIO = Path(__file__).parents[2] / "scenarios" / "tri-river.yaml"


@pytest.fixture(scope="module")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_rabbitmq(tmp_path_factory.mktemp("rabbitmq")) as url:
        yield url


async def test_an_exercise_by_url_ends_as_on_the_embedded_broker(
    rabbitmq: str, tmp_path: Path
) -> None:
    scenario = load_scenario(SCENARIO)
    embedded = await run_exercise(scenario, RunOptions(log=str(tmp_path / "embedded.db")))
    rabbit = await run_exercise(
        scenario, RunOptions(broker=rabbitmq, log=str(tmp_path / "rabbitmq.db"))
    )
    assert rabbit.summary.case_states == embedded.summary.case_states
    assert rabbit.summary.events == embedded.summary.events
    assert sorted((v.rule, v.case) for v in rabbit.summary.violations) == sorted(
        (v.rule, v.case) for v in embedded.summary.violations
    )


async def test_a_partitions_owner_dies_and_its_standby_takes_its_session_over(
    rabbitmq: str, tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    drills: dict[str, str] = {}
    log = f"{pg_url}?schema={run_schema}"
    options = LoadOptions(
        parties=4,
        rate=40,
        duration_s=5,
        broker=rabbitmq,
        workdir=tmp_path,
        drain_s=60,
        resend_after_s=1.0,
        partitions=2,
        standbys=1,
        log=log,
    )
    report = await run_load(options, during_umpires=killing_an_owner(drills, at=2.0))
    data = report.as_json()
    assert drills.get("owner") == "umpire-1 -> umpire-2"
    assert report.failure is None
    assert (data["lost"], data["duplicated"], data["undelivered"]) == (0, 0, 0)
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 200
    assert report.extra["partitions"]["owners"] == {
        "0": ["umpire-0"],
        "1": ["umpire-1", "umpire-2"],
    }
    heads = await _partitions_verify(log, 2)
    assert all(head > 0 for head in heads)
    assert sum(heads) == data["events"]
