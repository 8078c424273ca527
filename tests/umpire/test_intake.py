"""The exercise's intake: each submission decoded once, decided once, spoofs recorded with why."""

import pytest

from simulator.load.conversation import Conversation, load_party
from simulator.party.codec import CheckedCodec
from simulator.protocol.ids import partition_of
from simulator.records import REJECTION
from simulator.umpire import intake as intake_module
from simulator.umpire.intake import PartyIntake
from tests.load.deciding import AT, sequencer

PARTIES = ("p000", "p001")


def request(seq: int, case: str = "c-1") -> bytes:
    message = Conversation(case, "accepted", load_party("p000"), load_party("p001")).message(0)
    return CheckedCodec().submission("p000", seq, message)


def test_a_resent_submission_is_decided_once() -> None:
    intake = PartyIntake(sequencer(PARTIES), PARTIES)
    intake.take("p000", request(1))
    intake.take("p000", request(1))
    assert intake.has("p000", 1)
    assert not intake.has("p000", 2)
    [decision] = intake.stage(AT)
    assert decision.notice is None
    # Resent after it was decided (its commit was lost on the way back): nothing new.
    intake.take("p000", request(1))
    assert not intake.waiting()
    assert intake.stage(AT) == []
    assert [e.type for e in intake.sequencer.pending.events] == ["coop.msg.written_request"]


def test_rounds_decide_in_the_stated_order_and_the_rest_follows() -> None:
    intake = PartyIntake(sequencer(PARTIES), PARTIES)
    intake.take("p000", request(2, "c-2"))
    intake.take("p000", request(1, "c-1"))
    assert intake.decide("p000", 2, AT) is not None
    assert intake.decide("p000", 3, AT) is None  # never arrived
    intake.stage(AT)
    assert [e.subject for e in intake.sequencer.pending.events] == ["c-2", "c-1"]


def test_a_held_submission_waits_until_it_is_decided_by_name() -> None:
    """Sent ahead of its time and held, a submission is left out of `stage` until `decide`."""
    intake = PartyIntake(sequencer(PARTIES), PARTIES)
    intake.take("p000", request(1, "c-1"))
    intake.take("p000", request(2, "c-2"))
    intake.hold("p000", 1)
    assert intake.has("p000", 1)
    intake.stage(AT)
    assert [e.subject for e in intake.sequencer.pending.events] == ["c-2"]
    assert intake.decide("p000", 1, AT) is not None
    assert [e.subject for e in intake.sequencer.pending.events] == ["c-2", "c-1"]


def test_a_spoof_and_garbage_are_rejected_with_their_reason_and_strangers_have_no_say() -> None:
    intake = PartyIntake(sequencer(PARTIES), PARTIES)
    intake.take("p001", request(1))  # p001's connection submitting as p000
    intake.take("p000", b"\xff not json")
    assert intake.waiting()
    decisions = intake.stage(AT)
    assert all(d.notice is not None for d in decisions)
    events = intake.sequencer.pending.events
    assert [e.type for e in events] == [REJECTION, REJECTION]
    assert [e.recipient for e in events] == ["p001", "p000"]
    reasons = [e.data["reason"] for e in events]
    assert "p000" in reasons[0]
    assert "p001" in reasons[0]
    assert not intake.speaks("controller")
    assert intake.speaks("p001")


def test_a_submission_for_another_partitions_case_is_refused_naming_that_partition() -> None:
    """A partition's umpire decides only its own cases; the sender learns where to submit."""
    assert (partition_of("c-1", 2), partition_of("c-4", 2)) == (0, 1)
    intake = PartyIntake(sequencer(PARTIES), PARTIES, partition=(0, 2))
    intake.take("p000", request(1, "c-4"))
    intake.take("p000", request(2, "c-1"))
    [refused, decided] = sorted(intake.stage(AT), key=lambda d: d.notice is None)
    assert decided.notice is None
    assert refused.notice is not None
    assert refused.notice.seq == 1
    assert "belongs to partition 1 of 2, not to 0" in refused.notice.reason
    assert "submit/p000/1" in refused.notice.reason
    events = intake.sequencer.pending.events
    assert sorted(e.type for e in events) == sorted([REJECTION, "coop.msg.written_request"])


def test_numbers_taken_back_before_they_came_are_remembered_up_to_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A party taking back numbers it never sent (a hostile client with its credentials,
    naming thousands a report) had grown the umpire without end. Up to the bound, what
    comes under such a number later is dropped (the submission overtaken by the word);
    past it, it is judged as it comes. What arrives frees its place."""
    monkeypatch.setattr(intake_module, "MAX_UNRECEIVED", 3)
    intake = PartyIntake(sequencer(PARTIES), PARTIES)
    for seq in range(1, 6):
        intake.retract("p000", seq)
    assert intake.unreceived["p000"] == 3
    intake.take("p000", request(1, "c-1"))  # remembered: the one taken back, dropped
    assert not intake.has("p000", 1)
    assert intake.unreceived["p000"] == 2
    intake.take("p000", request(5, "c-5"))  # past the bound: judged as it comes
    assert intake.has("p000", 5)
    [decision] = intake.stage(AT)
    assert decision.notice is None
    assert [e.subject for e in intake.sequencer.pending.events] == ["c-5"]
    intake.retract("p000", 6)  # the place freed by seq 1 is taken again
    assert intake.unreceived["p000"] == 3
