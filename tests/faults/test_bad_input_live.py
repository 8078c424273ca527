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
from simulator.records import REJECTION
from simulator.run.exercise import Exercise, RunOptions
from simulator.transport import SessionSettings, client_id_for
from tests.faults.harness import example
from tests.faults.test_bad_input import payloads

PARTY = "northmark"
COUNT = 100


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


def messages(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (e["id"], e["type"], e["time"], e["data"])
        for e in events
        if e["type"].startswith("coop.msg.")
    ]


async def test_item33_generated_bad_payloads_over_a_real_broker(
    tmp_path: Any, calm: list[dict[str, Any]]
) -> None:
    """About 100 generated bad payloads and two same-seq spoofs: one rejection each, seen by the
    sender; the exercise itself runs exactly as a calm run."""
    bad = generated_batch() + spoofs()
    assert len(set(bad)) == len(bad) > COUNT * 0.9  # hypothesis may repeat a payload or two
    started = asyncio.Event()
    async with Exercise(
        example(), RunOptions(log=str(tmp_path / "run.db")), on_commit=lambda _: started.set()
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
                await started.wait()
                for payload in bad:
                    await sender.publish(topics.submit(PARTY), payload)

            seen: set[str] = set()

            async def watch() -> None:
                async for message in watcher.messages():
                    body = json.loads(message.payload)
                    for event in body.get("events", ()):
                        if event["type"] == REJECTION:
                            seen.add(event["id"])

            async with asyncio.TaskGroup() as group:
                group.create_task(attack())
                watching = group.create_task(watch())
                outcome = await exercise.run()
                await asyncio.sleep(0.5)
                watching.cancel()
    async with open_log(tmp_path / "run.db", read_only=True) as store:
        events = [e.model_dump(mode="json") async for e in store.read()]
    rejections = [e for e in events if e["type"] == REJECTION]
    assert len(rejections) == len(bad)
    assert all(e["recipient"] == PARTY and e["data"]["reason"] for e in rejections)
    assert {e["id"] for e in rejections} == seen, "the sender did not see every rejection"
    assert outcome.result.reason == "the scenario's duration was reached"
    assert messages(events) == messages(calm)
