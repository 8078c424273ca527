"""Confidential cases (Art. 6.3) reach their two parties and no observer, on real brokers."""

import asyncio
import contextlib
import json
from pathlib import Path

import pytest

from simulator.brokers import (
    Broker,
    EmbeddedBroker,
    MosquittoBroker,
    amqtt_acls,
    exercise_principals,
    mosquitto_acl,
)
from simulator.brokers.tls import TlsFiles
from simulator.messaging.routing import confidential_cases, routes
from simulator.messaging.topics import Topics
from simulator.records import is_message_event
from simulator.run.exercise import Exercise, RunOptions, run_exercise
from simulator.run.replay import read_range
from simulator.scenario import load_scenario
from simulator.transport import Received, SubscriptionRefused, Transport
from tests.transport.helpers import Connector

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
# Every case in it is confidential; the text below is in each request.
CONFIDENTIAL = SCENARIOS / "confidential-vetting.yaml"
SECRET_TEXT = b"Please keep this request confidential"


async def _collect(observer: Transport, into: list[Received]) -> None:
    async for message in observer.messages():
        into.append(message)


@pytest.mark.parametrize("kind", ["embedded", "mosquitto"])
async def test_an_observer_of_a_secure_run_never_sees_a_confidential_case(
    kind: str, tmp_path: Path, tls_files: TlsFiles
) -> None:
    """In a secure run the observer may read the log topics and the clock only, and confidential
    cases travel through their parties' inboxes: it sees the run go by, never their content,
    while the parties still complete their cases exactly as in an ordinary run."""
    scenario = load_scenario(CONFIDENTIAL)
    topics = Topics(scenario.exercise)
    accounts = exercise_principals([p.id for p in scenario.parties])
    options = {"workdir": tmp_path / kind, "tls": tls_files, "restricted_observer": True}
    broker: Broker = (
        EmbeddedBroker(topics, accounts, **options)  # type: ignore[arg-type]
        if kind == "embedded"
        else MosquittoBroker(topics, accounts, **options)  # type: ignore[arg-type]
    )
    received: list[Received] = []
    async with broker, contextlib.AsyncExitStack() as stack:
        connect = Connector(stack, topics)
        observer = await connect(broker, "observer")
        # What an observer would like to read: everything. It gets what the ACL allows.
        for wanted in (topics.tree, topics.all_submissions, topics.inbox("drumlin")):
            try:
                await observer.subscribe(wanted)
            except SubscriptionRefused:
                assert kind == "embedded"
        await observer.subscribe(f"{topics.base}/log/#", topics.clock)
        reader = asyncio.create_task(_collect(observer, received), name="observer.reader")
        try:
            options_run = RunOptions(log=str(tmp_path / "secure.db"), secure=True)
            async with Exercise(scenario, options_run, broker=broker) as exercise:
                outcome = await exercise.run()
            # The end marker is the last thing published: once seen, all has landed.
            async with asyncio.timeout(10):
                while not any(b'"ended"' in m.payload for m in received):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    plain = await run_exercise(scenario, RunOptions(log=str(tmp_path / "plain.db")))
    assert outcome.summary.case_states == plain.summary.case_states
    assert outcome.summary.messages == plain.summary.messages > 10
    # The observer saw the run (clock, start, end) ...
    assert any(m.topic == topics.clock for m in received)
    # ... and no message of any case, and not one byte of the confidential text.
    seen_events = [
        event
        for m in received
        if m.payload.startswith(b"{")
        for event in json.loads(m.payload).get("events", [])
    ]
    assert seen_events, "the observer saw nothing at all"
    assert not [e for e in seen_events if is_message_event(e["type"])]
    assert not [m for m in received if SECRET_TEXT in m.payload]


def test_restricted_observer_grants_leave_out_inboxes_and_submissions() -> None:
    """The secure observer reads log topics and the clock; both ACL renderings say so."""
    topics = Topics("drill")
    publish, read = amqtt_acls(topics, ["observer", "alpha"], restricted_observer=True)
    assert publish["observer"] == []
    assert read["observer"] == [f"{topics.base}/log/#", topics.clock]
    acl = mosquitto_acl(topics, restricted_observer=True)
    observer_block = acl.split("user observer\n")[1].split("\n\n")[0]
    assert observer_block.splitlines() == [
        f"topic read {topics.base}/log/#",
        f"topic read {topics.clock}",
    ]


async def test_a_replay_routes_confidential_cases_as_the_live_run_did(tmp_path: Path) -> None:
    """Re-published, a confidential case's messages go to its parties' inboxes, never to log/."""
    log = tmp_path / "run.db"
    await run_exercise(load_scenario(CONFIDENTIAL), RunOptions(log=str(log)))
    events = await read_range(str(log))
    private = confidential_cases(events)
    assert private == {"conf-1", "conf-2", "conf-3"}
    topics = Topics("confidential-vetting")
    for event in events:
        if is_message_event(event.type):
            assert all("/inbox/" in t for t in routes(event, topics, private=True))
            assert routes(event, topics) == [topics.log(event.sender or "", event.recipient or "")]
