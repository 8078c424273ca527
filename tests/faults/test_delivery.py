"""RELIABILITY items 3-13: faults on the wire during whole exercises, judged by the log.

Each test runs the example scenario through a `FaultProxy` (or kills its
broker), lets the fault happen mid-run and then reconciles the log with a
calm run: every submission exactly once, nothing lost, nothing extra.
"""

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from simulator.brokers import MosquittoBroker
from simulator.faults import Direction, Packet, Rule
from simulator.faults.proxy import PUBACK
from tests.faults.harness import Drill, drill, example, reconcile, run_disturbed
from tests.runtime.test_exercise import EXAMPLE, exported

Calm = list[dict[str, Any]]
PARTY = "southmere"  # the requested party: it answers most of the messages
COMPLETED = "the scenario's duration was reached"


def submissions(packet: Packet) -> bool:
    """A packet with submissions: on a submit topic, or a round report carrying some.

    In simulated time a party carries a round's submissions in its report
    (`RoundDone.submissions`); lost, the report is asked for again and repeated.
    """
    if packet.topic is None:
        return False
    if "/submit/" in packet.topic:
        return True
    carried = packet.payload is not None and b'"submissions":[{' in packet.payload
    return "/report/" in packet.topic and carried


def committed_events(packet: Packet) -> bool:
    return packet.topic is not None and "/log/" in packet.topic


def connections(run: Drill, principal: str) -> int:
    return run.exercise._transports[principal].connected.connections


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_item03_04_broker_stopped_or_killed_mid_run(
    how: str, tmp_path: Path, calm: Calm
) -> None:
    """Mosquitto stopped (SIGTERM, item 3) or killed (SIGKILL, item 4) right after it
    acknowledged a submission, then started again: every submission is in the log once."""
    async with drill("mosquitto", example(), tmp_path) as run:
        broker = run.broker
        assert isinstance(broker, MosquittoBroker)
        first_pid = broker.pid

        async def disturb(run: Drill) -> None:
            await run.committed_at_least(8)
            # An observer, not a fault: the PUBACK goes on a moment later, and then the broker dies.
            acked = run.proxy.add(Rule("delay", "down", PARTY, kind=PUBACK, seconds=0.01))
            await acked.done.wait()
            await (broker.stop() if how == "stop" else broker.kill())
            await asyncio.sleep(0.5)
            await broker.start()

        outcome = await run_disturbed(run, disturb)
        assert broker.pid != first_pid
        assert connections(run, PARTY) >= 2
        assert connections(run, "umpire") >= 2
    assert outcome.result.reason == COMPLETED
    reconcile(await exported(tmp_path / "rough.db"), calm)


@pytest.mark.parametrize(
    ("direction", "principal", "topics"),
    [
        pytest.param("up", PARTY, submissions, id="item09-submission-lost-after-puback"),
        pytest.param("down", "umpire", submissions, id="item05-umpire-acked-then-lost-it"),
        pytest.param("down", PARTY, committed_events, id="item05-party-acked-then-lost-it"),
    ],
)
async def test_item05_09_acknowledged_then_lost(
    direction: Direction, principal: str, topics: Any, tmp_path: Path, calm: Calm
) -> None:
    """A message acknowledged and then lost (by the broker, item 9, or by a receiver before it
    handled it, item 5) is recovered by the outbox's resend or by catch-up."""
    async with drill("embedded", example(), tmp_path) as run:

        async def disturb(run: Drill) -> None:
            await run.committed_at_least(5)
            lost = run.proxy.add(Rule("ack_and_drop", direction, principal, match=topics, count=2))
            await lost.done.wait()

        outcome = await run_disturbed(run, disturb)
        assert run.proxy.stats["ack_and_drop"] == 2
    assert outcome.result.reason == COMPLETED
    reconcile(await exported(tmp_path / "rough.db"), calm)


async def test_item06_unacknowledged_at_disconnect_is_sent_again_and_recorded_once(
    tmp_path: Path, calm: Calm
) -> None:
    """The broker's PUBACK for a submission is lost and the connection cut: the transport
    publishes it again on the next connection, and the umpire records it once."""
    async with drill("mosquitto", example(), tmp_path) as run:

        async def disturb(run: Drill) -> None:
            await run.committed_at_least(5)
            # The submission reaches the broker (and the umpire); its PUBACK never comes back.
            lost = run.proxy.add(Rule("drop", "down", PARTY, kind=PUBACK, count=1))
            await lost.done.wait()
            assert run.proxy.cut(PARTY) == 1

        outcome = await run_disturbed(run, disturb)
        assert connections(run, PARTY) >= 2
    assert outcome.result.reason == COMPLETED
    reconcile(await exported(tmp_path / "rough.db"), calm)


@pytest.mark.parametrize("direction", ["up", "down"])
async def test_item07_duplicate_delivery_is_one_event(
    direction: Direction, tmp_path: Path, calm: Calm
) -> None:
    """Submissions delivered twice (a PUBLISH replayed on the way to the broker, or on the way
    to the umpire) are each recorded once."""
    principal = PARTY if direction == "up" else "umpire"
    async with drill("embedded", example(), tmp_path) as run:
        twice = run.proxy.add(Rule("duplicate", direction, principal, match=submissions, count=5))
        outcome = await run_disturbed(run, lambda run: twice.done.wait())
    assert twice.hits == 5
    assert outcome.result.reason == COMPLETED
    reconcile(await exported(tmp_path / "rough.db"), calm)


async def test_item08_reordered_events_are_caught_up(tmp_path: Path, calm: Calm) -> None:
    """Committed events held back so that later round markers overtake them: the party
    notices the gap by the visible counts, catches up, and the log is as calm."""
    async with drill("embedded", example(), tmp_path) as run:
        late = run.proxy.add(
            Rule("delay", "down", PARTY, match=committed_events, count=6, seconds=1.5)
        )
        outcome = await run_disturbed(run, lambda run: late.done.wait())
    assert late.hits == 6
    assert outcome.result.reason == COMPLETED
    reconcile(await exported(tmp_path / "rough.db"), calm)


async def test_item11_reconnect_storm(tmp_path: Path, calm: Calm) -> None:
    """Every connection cut every 300 ms for 2.4 s: the clients back off and reconnect, the run
    completes, nothing is lost or doubled, and reconnects stay bounded."""
    async with drill("mosquitto", example(), tmp_path) as run:
        cuts = 0

        async def disturb(run: Drill) -> None:
            nonlocal cuts
            await run.committed_at_least(3)
            for _ in range(8):
                cuts += run.proxy.cut()
                await asyncio.sleep(0.3)

        outcome = await run_disturbed(run, disturb)
        reconnects = {p: connections(run, p) for p in ("umpire", "northmark", PARTY)}
    assert cuts >= 8
    # At most one new connection per cut of it, plus the first: no storm of our own.
    assert all(2 <= n <= 9 for n in reconnects.values()), reconnects
    assert outcome.result.reason == COMPLETED
    reconcile(await exported(tmp_path / "rough.db"), calm)


async def test_item13_broker_queue_limit_is_filled_by_resend_and_catch_up(
    tmp_path: Path, calm: Calm
) -> None:
    """Mosquitto with a queue of 1 and one message in flight drops what overflows, silently;
    reconciliation finds the gaps and resend and catch-up fill them. A party slow to
    acknowledge (its PUBACKs held back) makes the queue overflow."""
    template = tmp_path / "tight.conf"
    stock = (EXAMPLE.parents[1] / "brokers" / "mosquitto.conf").read_text(encoding="utf-8")
    tight = re.sub(r"(?m)^max_queued_messages .*$", "max_queued_messages 1", stock)
    template.write_text(tight + "\nmax_inflight_messages 1\n", encoding="utf-8")
    async with drill("mosquitto", example(), tmp_path, template=template) as run:
        slow = run.proxy.add(Rule("delay", "up", PARTY, kind=PUBACK, count=3, seconds=0.8))
        outcome = await run_disturbed(run, lambda run: slow.done.wait())
        broker = run.broker
        assert isinstance(broker, MosquittoBroker)
        dropped = "dropped" in broker.log_file.read_text(encoding="utf-8", errors="replace")
    assert outcome.result.reason == COMPLETED
    reconcile(await exported(tmp_path / "rough.db"), calm)
    assert dropped, "the tight queue never overflowed: the drill proved nothing"
