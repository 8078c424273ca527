"""Confidential cases (Art. 6.3) reach their two parties and no observer, on real brokers."""

import asyncio
import contextlib
import json
import shutil
from collections.abc import Sequence
from datetime import timedelta
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
from simulator.eventlog import Event
from simulator.logfiles import open_log
from simulator.messaging.routing import confidential_cases, routes
from simulator.messaging.topics import Topics
from simulator.projections.cases import CaseProjection
from simulator.protocol import CaseState
from simulator.protocol.drafting import draft
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


TRANSFER = SCENARIOS / "results-transfer.yaml"


async def test_a_party_writing_into_a_case_not_its_own_learns_nothing_of_it(
    tmp_path: Path,
) -> None:
    """`mosquitto_pub` with cindervale's credentials sends a withdrawal and a notice of results
    into xfer-1, aldmoor's case with brackwater, while it is under way; `mosquitto_sub` with
    cindervale's credentials reads what cindervale is told.

    Before, the verdict cindervale read named the case's parties and its state ("withdrawal in
    this case goes from aldmoor to brackwater", "results is not allowed while the case is ...")
    and its message counted as one of the case's. Now it reads only that it is no party to the
    case, and the case runs as if it had not written.
    """
    sub, pub = shutil.which("mosquitto_sub"), shutil.which("mosquitto_pub")
    stdbuf = shutil.which("stdbuf")
    assert sub, "mosquitto_sub is missing: apt-get install mosquitto-clients"
    assert pub, "mosquitto_pub is missing: apt-get install mosquitto-clients"
    assert stdbuf, "stdbuf (coreutils) is missing"
    scenario = load_scenario(TRANSFER)
    cindervale = scenario.party("cindervale")
    opened = asyncio.Event()
    committed: list[Event] = []

    def watch(events: Sequence[Event]) -> None:
        committed.extend(events)
        if any(e.subject == "xfer-1" for e in events):
            opened.set()

    def prying(n: int, kind: str, recipient: str) -> bytes:
        message = draft(
            kind,
            message_id=f"cindervale.pry.{n}",
            case_id="xfer-1",
            sender=cindervale,
            recipient=scenario.party(recipient),
            fields={},
        )
        payload = {"kind": "submission", "party": "cindervale", "seq": 900 + n, "message": message}
        return json.dumps(payload).encode()

    # The example's pace: the 25 days in about 12 s.
    options = RunOptions(
        broker="mosquitto", log=str(tmp_path / "run.db"), clock="realtime", speed=25 * 86_400 / 12
    )
    told: list[dict[str, object]] = []
    news = asyncio.Event()
    async with Exercise(scenario, options, on_commit=watch) as exercise:
        address = exercise.broker.address
        user, password = exercise.broker.credentials("cindervale")
        login = ["-h", address.host, "-p", str(address.port), "-u", user, "-P", password]
        filters = [a for f in exercise.topics.party_filters("cindervale") for a in ("-t", f)]
        reader = await asyncio.create_subprocess_exec(
            stdbuf, "-oL", sub, *login, "-i", "cindervale-reader", "-q", "1", *filters, "-d",
            stdout=asyncio.subprocess.PIPE, limit=1 << 20,
        )  # fmt: skip
        assert reader.stdout is not None
        while b"SUBACK" not in await asyncio.wait_for(reader.stdout.readline(), 10):
            pass

        async def read() -> None:
            assert reader.stdout is not None
            async for line in reader.stdout:
                if line.startswith(b"{"):
                    told.extend(json.loads(line).get("events", ()))
                    news.set()

        reading = asyncio.create_task(read())
        try:
            run = asyncio.create_task(exercise.run())
            async with asyncio.timeout(60):
                await opened.wait()
            for n, (kind, to) in enumerate([("withdrawal", "brackwater"), ("results", "aldmoor")]):
                send = await asyncio.create_subprocess_exec(
                    pub, *login, "-i", f"cindervale-pry-{n}", "-q", "1",
                    "-t", exercise.topics.submit("cindervale"), "-s",
                    stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                )  # fmt: skip
                _, err = await asyncio.wait_for(send.communicate(prying(n, kind, to)), 30)
                assert send.returncode == 0, err.decode()
            outcome = await run
            # Its own messages' events are the last it reads of them; wait until they came.
            async with asyncio.timeout(30):
                while {"cindervale.pry.0", "cindervale.pry.1"} - {e["id"] for e in told}:
                    news.clear()
                    await news.wait()
        finally:
            reader.terminate()
            await reader.wait()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
    assert outcome.result.reason == "nothing left to happen"
    # What cindervale read of xfer-1 that it sent itself: its two, and the planted inject.
    own = [e for e in told if e.get("subject") == "xfer-1" and e.get("sender") == "cindervale"]
    assert {e["id"] for e in own} >= {"cindervale.pry.0", "cindervale.pry.1"}
    for told_event in own:
        data = told_event["data"]
        assert isinstance(data, dict)
        details = [v["detail"] for v in data["violations"]]
        assert details == ["cindervale is not a party to case xfer-1"], details
    # The case itself went as the scenario planned it, untouched by the two.
    async with open_log(tmp_path / "run.db", read_only=True) as store:
        projection = CaseProjection()
        async for event in store.read():
            projection.handle(event)
    case = projection.cases["xfer-1"]
    # The scenario's inject waiting on a notice of results in xfer-1 waited for brackwater's,
    # not cindervale's (it would have gone 12 hours after that one, before the case's own).
    [results] = [e for e in committed if e.subject == "xfer-1" and e.type == "coop.msg.results"
                 and e.sender == "brackwater"]  # fmt: skip
    [planted] = [e for e in committed if e.id == "inject.cindervale-asks-in-xfer-1"]
    assert planted.time == results.time + timedelta(hours=12)
    assert case.state is CaseState.COMPLETED
    assert case.transferred_to == ("cindervale",)
    assert case.messages == sum(
        1 for e in committed if e.subject == "xfer-1" and is_message_event(e.type)
        and e.sender != "cindervale"
    )  # fmt: skip
