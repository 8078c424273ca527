"""Gateways: one connection per generator process, speaking for its own parties only.

The umpire's routing and authority checks are logic, tested here on the real
`Umpire`, sequencer and SQLite store with a bus that is never reached; the
three modes end to end over a real broker are in `test_load_run.py`.
"""

from pathlib import Path

import orjson
import pytest

from simulator.context import wall_now
from simulator.load.conversation import Conversation, load_party
from simulator.load.umpire import GatewayRouter, batch_payload
from simulator.records import REJECTION, record_exercise_started
from simulator.umpire import Umpire
from tests.load.deciding import load_umpire

PARTIES = ["p000", "p001", "p002", "p003"]
GATEWAYS = {"gateway-0": ["p000", "p001"], "gateway-1": ["p002", "p003"]}


@pytest.fixture
def umpire(tmp_path: Path) -> Umpire:
    return load_umpire(tmp_path, PARTIES, GATEWAYS)


def opening(case_id: str, requesting: str, requested: str, seq: int) -> bytes:
    conversation = Conversation(case_id, "accepted", load_party(requesting), load_party(requested))
    return orjson.dumps(
        {"kind": "submission", "party": requesting, "seq": seq, "message": conversation.message(0)}
    )


def test_a_gateway_speaks_for_its_own_parties_only(umpire: Umpire) -> None:
    """Its party's request is decided; one of another gateway's parties is refused, with why."""
    payload = batch_payload(
        "gateway-0", [opening("c-1", "p000", "p001", 1), opening("c-2", "p002", "p003", 1)]
    )
    umpire.intake.take("gateway-0", payload)
    now = umpire.clock.now()
    umpire.stage_arrivals(now)
    events = umpire.sequencer.pending.events
    assert [(e.type, e.subject) for e in events if e.type != REJECTION] == [
        ("coop.msg.written_request", "c-1")
    ]
    [rejection] = [e for e in events if e.type == REJECTION]
    assert rejection.recipient == "gateway-0"
    assert "claims party 'p002'" in rejection.data["reason"]
    assert "'gateway-0'" in rejection.data["reason"]


def test_a_party_cannot_use_a_gateway_batch_for_another_party(umpire: Umpire) -> None:
    """p002's own connection submitting for p000, and a batch claiming another gateway: refused."""
    umpire.intake.take("p002", batch_payload("p002", [opening("c-3", "p000", "p001", 1)]))
    umpire.intake.take("gateway-1", batch_payload("gateway-0", [opening("c-4", "p000", "p001", 2)]))
    now = umpire.clock.now()
    umpire.stage_arrivals(now)
    events = umpire.sequencer.pending.events
    assert {e.type for e in events} == {REJECTION}
    reasons = {e.recipient or "": e.data["reason"] for e in events}
    assert sorted(reasons) == ["gateway-1", "p002"]
    assert "claims party 'p000'" in reasons["p002"]
    assert reasons["gateway-1"] == (
        "submission batch claims 'gateway-0' but came on 'gateway-1''s submit topic"
    )


def test_a_batch_that_does_not_validate_is_rejected_naming_the_field(umpire: Umpire) -> None:
    """An empty batch, and one whose item lacks its seq: one rejection each, saying where."""
    empty = b'{"kind":"submissions","party":"gateway-0","items":[]}'
    no_seq = batch_payload("gateway-0", [b'{"kind":"submission","party":"p000","message":{}}'])
    umpire.intake.take("gateway-0", empty)
    umpire.intake.take("gateway-0", no_seq)
    umpire.stage_arrivals(umpire.clock.now())
    events = umpire.sequencer.pending.events
    assert [e.type for e in events] == [REJECTION, REJECTION]
    first, second = (e.data["reason"] for e in events)
    assert first.startswith("submission batch: items:")
    assert second.startswith("submission batch: items.0.seq:")
    assert umpire.rejections == 2


def test_committed_events_go_once_to_each_gateway_whose_parties_see_them(
    umpire: Umpire,
) -> None:
    """A message to the inbox of the gateway of its two parties; an exercise-wide event to all."""
    umpire.intake.take("gateway-1", batch_payload("gateway-1", [opening("c-5", "p002", "p003", 1)]))
    umpire.stage_arrivals(umpire.clock.now())
    [message] = umpire.sequencer.pending.events
    started = record_exercise_started(
        umpire.sequencer.agreement,
        event_id="exercise-started",
        exercise="load-test",
        at=umpire.clock.now(),
        wallclock=wall_now(),
        scenario="load test",
        seed=1,
    )
    topics = umpire.topics
    router = umpire.router
    assert isinstance(router, GatewayRouter)
    assert router.via_gateways(message, False) == [topics.inbox("gateway-1")]  # type: ignore[arg-type]
    assert router.via_gateways(started, False) == [  # type: ignore[arg-type]
        topics.inbox("gateway-0"),
        topics.inbox("gateway-1"),
    ]
    # Catch-up follows the same rule.
    assert umpire.router.may_see("gateway-1", frozenset({"p002", "p003"}))
    assert not umpire.router.may_see("gateway-0", frozenset({"p002", "p003"}))
    assert not umpire.router.may_see("p000", frozenset({"p002", "p003"}))
