"""Partitioned umpires: the cases split between two umpire processes and a standby.

Real parts throughout: a three-node NATS cluster (or Mosquitto), PostgreSQL for the
partitions' logs and their ownership, umpire and generator processes of their own.
"""

import asyncio
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import psycopg
import pytest

from simulator.brokers import Broker, MosquittoBroker
from simulator.eventlog import verify
from simulator.load import LoadOptions, run_load
from simulator.load.partitioned import UmpireFleet
from simulator.logfiles import open_log, partition_location
from simulator.protocol.ids import partition_of
from simulator.records import REJECTION
from tests.eventlog.conftest import pg_url, run_schema

# The PostgreSQL fixtures, shared with the event log tests.
__all__ = ["pg_url", "run_schema"]

# Generous: the machine may be busy; every wait ends as soon as its condition holds.
WITHIN = 90.0


async def _partitions_verify(log: str, partitions: int) -> list[int]:
    """Each partition's log verifies (chain and checkpoints); the heads, in order."""
    heads = []
    for partition in range(partitions):
        location = partition_location(log, partition)
        async with open_log(location, read_only=True) as store:
            found = await verify(store)
            assert found.ok, (location, found)
            heads.append(await store.head())
    return heads


def killing_an_owner(
    drills: dict[str, str], *, at: float
) -> Callable[[UmpireFleet], Awaitable[None]]:
    """A drill: SIGKILL partition 1's owner `at` s in; `drills["owner"]` says who took over."""

    async def kill_an_owner(fleet: UmpireFleet) -> None:
        await asyncio.sleep(at)  # the drill's moment, not a wait for a condition
        victim = fleet.kill(1)
        taken = await fleet.wait_owned(1, not_by=victim.name, seconds=WITHIN)
        drills["owner"] = f"{victim.name} -> {taken.name}"

    return kill_an_owner


async def test_a_node_and_a_partitions_owner_die_and_nothing_is_lost(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """Two partitions and a standby on a NATS cluster: a node and an owner SIGKILLed.

    The standby takes the dead owner's partition over (from its log, with its MQTT
    session); the run completes with 0 lost, 0 duplicated, every case done, and
    every partition's log verifies.
    """
    drills: dict[str, str] = {}

    async def kill_a_node(broker: Broker) -> None:
        await asyncio.sleep(1.0)  # the drill's moment, not a wait for a condition
        await broker.kill(1)  # type: ignore[attr-defined]
        drills["node"] = "n1"

    log = f"{pg_url}?schema={run_schema}"
    options = LoadOptions(
        parties=4,
        rate=40,
        duration_s=6,
        broker="nats",
        workdir=tmp_path,
        drain_s=60,
        resend_after_s=1.0,
        partitions=2,
        standbys=1,
        log=log,
    )
    # Mid-run, after the node's loss.
    kill_an_owner = killing_an_owner(drills, at=2.5)
    report = await run_load(options, during=kill_a_node, during_umpires=kill_an_owner)
    data = report.as_json()
    assert drills.get("node") == "n1"
    assert drills.get("owner") == "umpire-1 -> umpire-2"
    assert report.failure is None
    assert data["lost"] == 0
    assert data["duplicated"] == 0
    assert data["undelivered"] == 0
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 240
    assert data["submitted"] == data["committed_messages"]
    partitions = report.extra["partitions"]
    assert partitions["owners"] == {"0": ["umpire-0"], "1": ["umpire-1", "umpire-2"]}
    heads = await _partitions_verify(log, 2)
    assert all(head > 0 for head in heads)
    assert sum(heads) == data["events"]
    print({"drills": drills, "heads": heads, "resends": data["resends"]})


async def test_a_submission_on_a_topic_not_its_cases_is_refused_and_recorded(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """mosquitto_pub, as a party: a submission on a topic that is not its case's is refused.

    Sent to the wrong partition, or to the bare submit topic, it is a rejection in
    partition 0's log that says where it belongs; the party may not publish on
    another party's topics, nor on a partition the run does not have (the ACL).
    """
    assert shutil.which("mosquitto_pub"), "mosquitto-clients is missing (scripts/check)"
    # A case id of partition 1 (the hash decides; found, not assumed).
    case = next(f"stray-{n}" for n in range(100) if partition_of(f"stray-{n}", 2) == 1)

    async def publish_astray(broker: Broker) -> None:
        assert isinstance(broker, MosquittoBroker)
        user, password = broker.credentials("p000")
        base = f"coop/{broker.topics.exercise}"
        message = {
            "type": "request",
            "message_id": "p000.stray",
            "case_id": case,
            "sender": "p000",
            "recipient": "p001",
            "sent_at": "2026-01-01T00:00:00Z",
        }
        payload = orjson.dumps(
            {"kind": "submission", "party": "p000", "seq": 999_999, "message": message}
        )
        # Its case's wrong partition; another party's topic (the ACL's); a partition no
        # umpire owns (the ACL's too); the bare topic, where no umpire decides.
        for topic in (
            f"{base}/submit/p000/0",
            f"{base}/submit/p001/0",
            f"{base}/submit/p000/7",
            f"{base}/submit/p000",
        ):
            await asyncio.to_thread(
                subprocess.run,
                [
                    "mosquitto_pub",
                    "-h",
                    broker.address.host,
                    "-p",
                    str(broker.address.port),
                    "-u",
                    user,
                    "-P",
                    password,
                    "-q",
                    "1",
                    "-t",
                    topic,
                    "-m",
                    payload.decode(),
                ],
                check=True,
                timeout=30,
            )

    log = f"{pg_url}?schema={run_schema}"
    options = LoadOptions(
        parties=4,
        rate=20,
        duration_s=3,
        broker="mosquitto",
        workdir=tmp_path,
        processes=1,
        partitions=2,
        log=log,
    )
    report = await run_load(options, during=publish_astray)
    data = report.as_json()
    assert data["lost"] == 0
    assert data["duplicated"] == 0
    async with open_log(partition_location(log, 0), read_only=True) as store:
        rejections = [e async for e in store.read() if e.type == REJECTION]
    # Twice, from its own topics: the copies for p001's topic and partition 7 were
    # refused by the broker and never reached an umpire.
    reasons = sorted(str(r.data["reason"]) for r in rejections)
    assert len(reasons) == 2, reasons
    assert f"case {case!r} belongs to partition 1 of 2, not to 0" in reasons[0]
    assert "submit/p000/1" in reasons[0]
    assert "this run's cases are split among 2 umpires: submit on submit/p000/N" in reasons[1]
    await _partitions_verify(log, 2)


async def test_an_umpire_started_by_hand_joins_the_run_and_takes_a_partition_over(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """`simulator umpire`, started apart (as on another host), stands by, then takes over.

    It learns the run from the log alone; when partition 0's owner is SIGKILLed it
    owns that partition, resumes from its log, and the run loses nothing.
    """
    said: list[str] = []

    async def line_with(stream: asyncio.StreamReader, text: str) -> str:
        while True:
            line = (await stream.readline()).decode()
            assert line, f"the joining umpire ended before saying {text!r}: {said}"
            said.append(line.rstrip())
            if text in line:
                return line

    joiner: list[asyncio.subprocess.Process] = []

    async def join_then_kill_an_owner(fleet: UmpireFleet) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "simulator",
            "umpire",
            "--log",
            fleet.spec.log,
            "--broker",
            fleet.spec.broker,
            "--name",
            "joiner",
            "--partitions",
            "2",
            stderr=asyncio.subprocess.PIPE,
        )
        joiner.append(process)
        assert process.stderr is not None
        await asyncio.wait_for(line_with(process.stderr, "joiner: standby"), WITHIN)
        victim = fleet.kill(0)
        assert victim.name == "umpire-0"
        await asyncio.wait_for(line_with(process.stderr, "joiner: owner of partition 0"), WITHIN)

    log = f"{pg_url}?schema={run_schema}"
    options = LoadOptions(
        parties=4,
        rate=30,
        duration_s=5,
        broker="mosquitto",
        workdir=tmp_path,
        processes=1,
        drain_s=60,
        resend_after_s=1.0,
        partitions=2,
        log=log,
    )
    try:
        report = await run_load(options, during_umpires=join_then_kill_an_owner)
    finally:
        for process in joiner:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
    (process,) = joiner
    assert process.stderr is not None
    # The run's own broker went with the run: the joiner's partition is committed, but
    # its end could not be announced, and it says so (exit 2) rather than hang.
    await asyncio.wait_for(line_with(process.stderr, "joiner: partition 0 stopped"), WITHIN)
    await asyncio.wait_for(line_with(process.stderr, "stopped answering"), WITHIN)
    assert await asyncio.wait_for(process.wait(), WITHIN) == 2
    data = report.as_json()
    assert data["lost"] == 0
    assert data["duplicated"] == 0
    assert data["undelivered"] == 0
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 150
    await _partitions_verify(log, 2)


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
async def test_one_partition_with_a_standby_carries_a_run(
    tmp_path: Path, pg_url: str, run_schema: str, broker: str
) -> None:
    """One partition is a partitioned run too: its umpire in a process of its own, a standby."""
    log = f"{pg_url}?schema={run_schema}"
    options = LoadOptions(
        parties=4,
        rate=20,
        duration_s=2,
        broker=broker,
        workdir=tmp_path,
        processes=1,
        partitions=1,
        standbys=1,
        log=log,
    )
    report = await run_load(options)
    data = report.as_json()
    assert data["verdict"] == "ok", data["failure"]
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 40
    assert report.extra["partitions"]["owners"] == {"0": ["umpire-0"]}
    assert await _partitions_verify(log, 1) == [data["events"]]
    # Joining it afterwards is refused at once (it had waited out a 30 s connect to the
    # run's broker, long gone), with what became of the run.
    joined = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "umpire",
            "--log",
            log,
            "--broker",
            "mqtt://u:p@127.0.0.1:9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert joined.returncode == 2, joined.stderr
    said = " ".join(joined.stderr.split())  # as wrapped to the terminal's width
    assert "this run ended at" in said
    assert "(the load generators finished): there is nothing to join" in said


async def test_an_owner_cut_off_from_postgresql_stops_and_its_standby_carries_on(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """The owner lives on but its lease session is cut: fenced, it stops; nothing is lost.

    The server ends the lease's session as it would for a network cut. A standby
    takes the partition and claims its log; the old owner learns it (its lease, or
    an append refused by the fencing token) and stops, reporting the partition lost.
    """
    taken: list[str] = []

    async def cut_an_owners_lease(fleet: UmpireFleet) -> None:
        await asyncio.sleep(1.5)  # the drill's moment: mid-run
        victim = fleet.owner(1)
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as admin:
            cursor = await admin.execute(
                # The session that holds the lock (a standby's, for the same partition,
                # waits under the same name).
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid IN "
                "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)",
                (f"coop-sim lease {fleet.spec.exercise} partition 1",),
            )
            assert [row[0] for row in await cursor.fetchall()] == [True]
        new = await fleet.wait_owned(1, not_by=victim.name, seconds=WITHIN)
        taken.append(f"{victim.name} -> {new.name}")

    log = f"{pg_url}?schema={run_schema}"
    options = LoadOptions(
        parties=4,
        rate=30,
        duration_s=5,
        broker="mosquitto",
        workdir=tmp_path,
        processes=1,
        drain_s=60,
        resend_after_s=1.0,
        partitions=2,
        standbys=1,
        log=log,
    )
    report = await run_load(options, during_umpires=cut_an_owners_lease)
    data = report.as_json()
    assert taken == ["umpire-1 -> umpire-2"]
    assert report.failure is None
    assert data["lost"] == 0
    assert data["duplicated"] == 0
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 150
    assert report.extra["partitions"]["owners"]["1"] == ["umpire-1", "umpire-2"]
    await _partitions_verify(log, 2)


async def test_a_partitions_owner_dead_with_no_standby_fails_the_run(
    tmp_path: Path, pg_url: str, run_schema: str
) -> None:
    """Partition 0's owner SIGKILLed with no standby to take over: the run failed (exit 2),
    naming the partition. It had been reported as saturated (exit 3: its cases counted as
    late, not lost) with the machine all but idle."""
    log = f"{pg_url}?schema={run_schema}"
    options = LoadOptions(
        parties=4,
        rate=20,
        duration_s=4,
        drain_s=2,
        broker="mosquitto",
        workdir=tmp_path,
        processes=1,
        partitions=2,
        log=log,
    )

    async def kill_partition_0(fleet: UmpireFleet) -> None:
        await asyncio.sleep(1.0)  # the drill's moment, not a wait for a condition
        fleet.kill(0)

    report = await run_load(options, during_umpires=kill_partition_0)
    data = report.as_json()
    assert data["verdict"] == "failed"
    assert report.failure is not None
    assert "partition 0 was left unfinished: umpire-0 ended without finishing it" in (
        report.failure
    )
    assert "no standby took it over" in report.failure
