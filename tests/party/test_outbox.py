"""The one outbox every party keeps, and the two codecs that put submissions on the wire."""

import orjson

from simulator.load.conversation import Conversation, load_party
from simulator.messaging.wire import CatchUpRequest, Submission, decode_from_party
from simulator.party.codec import CheckedCodec, FastCodec
from simulator.party.outbox import Outbox, Outgoing, ResendPolicy

POLICY = ResendPolicy(after_s=1.0, max_s=4.0)


def sent(outbox: Outbox, seq: int, at: float, message_id: str | None = None) -> Outgoing:
    item = Outgoing(seq, message_id or f"m{seq}", "written_request", f"c{seq}", b"{}")
    outbox.add(item)
    outbox.sent(item, at)
    return item


def test_a_submission_late_but_not_lost_is_not_resent_while_the_party_sees_progress() -> None:
    outbox = Outbox(POLICY)
    sent(outbox, 1, at=0.0)
    sent(outbox, 2, at=0.0)
    # Seq 1 is committed at 0.9: the umpire hears this party; seq 2 is only late.
    assert [i.seq for i in outbox.committed("m1", now=0.9)] == [1]
    assert outbox.due(1.5) == []
    # Quiet for a whole backoff since the last progress: now it counts as lost.
    assert [i.seq for i in outbox.due(2.0)] == [2]


def test_a_submission_the_umpire_holds_until_its_time_is_never_resent() -> None:
    """Sent ahead of its time and held: neither a quiet spell nor a later commit means loss."""
    outbox = Outbox(POLICY)
    sent(outbox, 1, at=0.0)
    sent(outbox, 2, at=0.0)
    outbox.hold(1)
    outbox.committed("m2", now=0.5)
    assert outbox.due(0.6) == []
    assert outbox.due(60.0) == []
    assert [i.seq for i in outbox.committed("m1", now=61.0)] == [1]


def test_a_submission_overtaken_by_a_later_commit_is_resent_at_once() -> None:
    outbox = Outbox(POLICY)
    sent(outbox, 1, at=0.0)
    sent(outbox, 2, at=0.0)
    outbox.committed("m2", now=0.6)
    # The umpire takes a party's submissions in order: seq 1 was lost.
    assert [i.seq for i in outbox.due(0.6)] == [1]


def test_an_overtaken_submission_backs_off_after_its_first_resend() -> None:
    """Only its commit may have been lost on the way back: resending it again and again
    (twice a second) crowded a tight broker queue until another party's report was lost."""
    outbox = Outbox(POLICY)
    item = sent(outbox, 1, at=0.0)
    sent(outbox, 2, at=0.0)
    outbox.committed("m2", now=0.5)
    resent = []
    now = 0.0
    while now < 20.0:
        now += 0.25
        if outbox.due(now):
            resent.append(now)
            outbox.sent(item, now)
    assert resent == [0.5, 2.5, 6.5, 10.5, 14.5, 18.5]


def test_the_backoff_doubles_per_attempt_up_to_its_cap() -> None:
    outbox = Outbox(POLICY)
    item = sent(outbox, 1, at=0.0)
    due_at: list[float] = []
    now = 0.0
    while len(due_at) < 4:
        now += 0.25
        if outbox.due(now):
            due_at.append(now)
            outbox.sent(item, now)
    assert due_at == [1.0, 3.0, 7.0, 11.0]
    assert item.attempts == 5


def test_queued_submissions_are_never_due_and_settling_empties_every_slot() -> None:
    outbox = Outbox(POLICY)
    queued = Outgoing(1, "m1", "written_request", "c1", b"{}")
    outbox.add(queued)
    assert outbox.due(100.0) == []
    # The same message submitted again under a new seq: one commit settles both.
    sent(outbox, 2, at=0.0, message_id="m1")
    sent(outbox, 3, at=0.0)
    assert sorted(i.seq for i in outbox.committed("m1", now=1.0)) == [1, 2]
    assert outbox.rejected(3, now=1.0) is not None
    assert outbox.rejected(3, now=1.0) is None  # seen again (a catch-up): nothing left
    assert len(outbox) == 0
    assert outbox.committed("m1", now=2.0) == []


def test_the_fast_codec_writes_what_the_umpire_reads_as_the_checked_one_does() -> None:
    message = Conversation("g0-1", "accepted", load_party("p000"), load_party("p001")).message(0)
    checked, fast = CheckedCodec(), FastCodec()
    decoded = [decode_from_party(c.submission("p000", 7, message)) for c in (checked, fast)]
    assert decoded[0] == decoded[1] == Submission(party="p000", seq=7, message=message)
    asks = [decode_from_party(c.catch_up_request("p000", 42)) for c in (checked, fast)]
    assert asks[0] == asks[1] == CatchUpRequest(party="p000", after=42)
    assert orjson.loads(fast.submission("p000", 7, message))["message"] == message
