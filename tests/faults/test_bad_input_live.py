"""RELIABILITY item 33 over the wire: generated bad payloads published to a real umpire.

During a whole exercise on a real broker, a party's connection publishes a
batch of distinct bad payloads on its submit topic. Each must become one
rejection event addressed to that party, which a second connection of the
party sees arrive; the exercise's own messages must be exactly those of a
calm run.
"""

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

from simulator.brokers import transport_for
from simulator.context import fresh_rng
from simulator.logfiles import open_log
from simulator.messaging.wire import Submission, WireError, decode_from_party
from simulator.records import REJECTION, payload_digest
from simulator.run.exercise import Exercise, RunOptions
from simulator.transport import SessionSettings, client_id_for
from tests.faults.harness import example
from tests.faults.test_bad_input import payloads

PARTY = "northmark"
COUNT = 100
SPOOFED_SEQS = 10
SPOOF_ROUNDS = 15
SPOOF_EVERY = 3


def refused_by_form(payload: bytes) -> bool:
    """Bad before any protocol check: undecodable, not a submission, or another party's."""
    try:
        decoded = decode_from_party(payload)
    except WireError:
        return True
    return not isinstance(decoded, Submission) or decoded.party != PARTY


def generated_batch() -> list[bytes]:
    """COUNT distinct payloads from the in-process fuzz's strategy, one per hypothesis example."""
    batch: dict[bytes, None] = {}

    @settings(
        max_examples=COUNT,
        # The same batch every run: drawn at random, it once held 88 distinct payloads,
        # and the test failed for a count, not for anything the umpire did.
        derandomize=True,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(payloads.filter(refused_by_form))
    def draw(payload: bytes) -> None:
        batch[payload] = None

    draw()
    return list(batch)


def spoofs() -> list[bytes]:
    """Two different submissions claiming another party under the same sequence number."""
    return [
        json.dumps(
            {"kind": "submission", "party": "southmere", "seq": 7, "message": {"n": n}}
        ).encode()
        for n in (1, 2)
    ]


def numbered_spoofs(commit: int) -> list[bytes]:
    """After the `commit`-th commit: one payload claiming another party under each of the
    party's first numbers. Their rejections name those numbers; a party once took them for
    rejections of its own plans and dropped one sent ahead of its time, which never reached
    the log (CI, by chance). Sent all through the run, so some land while such plans wait."""
    return [
        json.dumps(
            {"kind": "submission", "party": "southmere", "seq": seq, "message": {"c": commit}}
        ).encode()
        for seq in range(1, SPOOFED_SEQS + 1)
    ]


def messages(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (e["id"], e["type"], e["time"], e["data"])
        for e in events
        if e["type"].startswith("coop.msg.")
    ]


async def test_item33_generated_bad_payloads_over_a_real_broker(
    tmp_path: Any, calm: list[dict[str, Any]]
) -> None:
    """About 100 generated bad payloads, two same-seq spoofs, and spoofs under the party's own
    numbers all through the run: one rejection each, seen by the sender; the exercise itself
    runs exactly as a calm run."""
    bad = generated_batch() + spoofs()
    assert len(set(bad)) == len(bad) > COUNT * 0.9  # hypothesis may repeat a payload or two
    commits: asyncio.Queue[int] = asyncio.Queue()
    count = 0

    def committed(_: object) -> None:
        nonlocal count
        count += 1
        commits.put_nowait(count)

    sent: list[bytes] = []
    async with Exercise(
        example(), RunOptions(log=str(tmp_path / "run.db")), on_commit=committed
    ) as exercise:
        topics = exercise.topics
        watcher = transport_for(
            exercise.broker,
            PARTY,
            SessionSettings(client_id_for(topics.exercise, PARTY, "watch")),
            rng=fresh_rng(),
        )
        async with watcher:
            await watcher.subscribe(*topics.party_filters(PARTY))
            sender = exercise._transports[PARTY]

            async def attack() -> None:
                # A round of spoofs after every few commits, a bounded number of them: their
                # own rejections are commits too, and must not feed the attack for ever.
                first = True
                for _ in range(SPOOF_ROUNDS):
                    commit = await commits.get()
                    while commits.qsize() < SPOOF_EVERY and not first:
                        commit = await commits.get()
                    while not commits.empty():
                        commit = commits.get_nowait()
                    batch = numbered_spoofs(commit) + (bad if first else [])
                    first = False
                    for payload in batch:
                        await sender.publish(topics.submit(PARTY), payload)
                    sent.extend(batch)

            seen: set[str] = set()
            news = asyncio.Event()

            async def watch() -> None:
                async for message in watcher.messages():
                    body = json.loads(message.payload)
                    for event in body.get("events", ()):
                        if event["type"] == REJECTION:
                            seen.add(event["id"])
                            news.set()

            async with asyncio.TaskGroup() as group:
                attacking = group.create_task(attack())
                watching = group.create_task(watch())
                outcome = await exercise.run()
                attacking.cancel()
                async with open_log(tmp_path / "run.db", read_only=True) as store:
                    events = [e.model_dump(mode="json") async for e in store.read()]
                rejected = {e["id"] for e in events if e["type"] == REJECTION}
                # The last rejections may still be on their way to the watcher.
                async with asyncio.timeout(30):
                    while not rejected <= seen:
                        news.clear()
                        await news.wait()
                watching.cancel()
    rejections = [e for e in events if e["type"] == REJECTION]
    # One rejection per payload the umpire took: every generated one (sent right after the
    # first commit), and the spoofs sent before it ended (the last few may come after).
    digests = [e["id"].rsplit("-", 1)[1] for e in rejections]
    assert len(set(digests)) == len(digests)
    assert set(digests) <= {payload_digest(p) for p in sent}
    assert {payload_digest(p) for p in bad} <= set(digests)
    assert all(e["recipient"] == PARTY and e["data"]["reason"] for e in rejections)
    assert rejected == seen, "the sender did not see every rejection"
    assert outcome.result.reason == "the scenario's duration was reached"
    assert messages(events) == messages(calm)
