"""The one outbox every party keeps, and the two codecs that put submissions on the wire."""

import orjson

from simulator.load.conversation import Conversation, load_party
from simulator.messaging.wire import CatchUpRequest, Submission, decode_from_party
from simulator.party.codec import CheckedCodec, FastCodec
from simulator.party.outbox import Outbox, Outgoing, ResendPolicy
from simulator.records import rejection_id

POLICY = ResendPolicy(after_s=1.0, max_s=4.0)


def sent(
    outbox: Outbox,
    seq: int,
    at: float,
    message_id: str | None = None,
    lane: int = 0,
    epoch: int = 0,
) -> Outgoing:
    item = Outgoing(seq, message_id or f"m{seq}", "written_request", f"c{seq}", b"{}", lane=lane)
    outbox.add(item)
    outbox.sent(item, at, epoch)
    return item


def test_a_submission_late_but_not_lost_is_not_resent_while_the_party_sees_progress() -> None:
    outbox = Outbox(POLICY)
    sent(outbox, 1, at=0.0)
    sent(outbox, 2, at=0.0)
    # Seq 1 is committed at 0.9: the umpire hears this party; seq 2 is only late.
    assert [i.seq for i in outbox.committed("m1", now=0.9)] == [1]
    assert outbox.due(1.5) == []
    # Silent for a whole backoff since the last progress: the silence probe sends it.
    assert [i.seq for i in outbox.due(2.0)] == [2]


def test_a_busy_umpire_committing_in_order_is_never_sent_anything_again() -> None:
    """Saturation without loss: commits 10 s late, in order, while the party keeps sending.

    Lateness alone is no evidence: 60 s of it, 6,000 submissions, no resend (the old
    policy resent every one still open after a quiet backoff: 80k in a 15 s load run)."""
    outbox = Outbox(POLICY)
    resent = []
    for tick in range(6000):
        now = tick / 100
        sent(outbox, tick + 1, at=now)
        if tick >= 1000:  # the umpire is 10 s behind, in order
            outbox.committed(f"m{tick - 999}", now)
        resent += outbox.due(now)
    assert resent == []
    assert len(outbox) == 1000


def test_a_stalled_umpire_costs_one_probe_per_backoff_not_a_resend_of_everything() -> None:
    """The commit stream stops for 20 s with 1,000 submissions open: a silence, not evidence
    that any one of them was lost, so it is probed with one at a time, backing off."""
    outbox = Outbox(POLICY)
    for seq in range(1, 1001):
        sent(outbox, seq, at=0.0)
    probes: list[tuple[float, int]] = []
    now = 0.0
    while now < 20.0:
        now += 0.25
        for item in outbox.due(now):
            probes.append((now, item.seq))
            outbox.sent(item, now)
    # Newest first (its commit would overtake every older one lost with it), then the
    # next least sent; 1 s, then doubling up to the 4 s cap.
    assert probes == [(1.0, 1000), (3.0, 999), (7.0, 998), (11.0, 997), (15.0, 996), (19.0, 995)]
    # Progress ends the silence and restarts the backoff.
    outbox.committed("m1", now=20.0)
    assert outbox.due(20.5) == []
    assert [i.seq for i in outbox.due(21.0)] == [994]


def test_the_probes_answer_overtakes_the_older_submissions_lost_with_it() -> None:
    outbox = Outbox(POLICY)
    for seq in (1, 2, 3):
        sent(outbox, seq, at=0.0)
    probe = outbox.due(1.0)
    assert [i.seq for i in probe] == [3]
    outbox.sent(probe[0], 1.0)
    outbox.committed("m3", now=1.2)
    # Overtaken now: evidence for both older ones, resent soon after they were sent.
    assert sorted(i.seq for i in outbox.due(1.2)) == [1, 2]


def test_a_later_commit_overtakes_only_in_its_own_lane() -> None:
    """Each partition's umpire takes a party's submissions in order, but not across them."""
    outbox = Outbox(POLICY)
    sent(outbox, 1, at=0.0, lane=0)
    sent(outbox, 2, at=0.0, lane=1)
    sent(outbox, 3, at=0.0, lane=1)
    sent(outbox, 4, at=0.9, lane=0)  # the party is still sending in lane 0
    outbox.committed("m3", now=0.9)
    # Seq 2 was overtaken in lane 1; seq 1 only waits on lane 0's umpire.
    assert [i.seq for i in outbox.due(0.9)] == [2]


def test_a_connection_made_since_or_a_failed_publish_is_evidence_once() -> None:
    outbox = Outbox(POLICY)
    first = sent(outbox, 1, at=0.0, epoch=1)
    second = sent(outbox, 2, at=0.1, epoch=1)
    third = sent(outbox, 3, at=0.2, epoch=2)
    assert outbox.due(0.3, epoch=2) == [first, second]
    for item in (first, second):
        outbox.sent(item, 0.3, epoch=2)
    assert outbox.due(0.4, epoch=2) == []
    Outbox.suspect(third)  # its publish failed
    assert outbox.due(0.4, epoch=2) == [third]
    outbox.sent(third, 0.4, epoch=2)
    assert outbox.due(0.5, epoch=2) == []


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
    assert outbox.rejected(3, rejection_id("p", 3, b"{}"), now=1.0) is not None
    # Seen again (a catch-up): nothing left.
    assert outbox.rejected(3, rejection_id("p", 3, b"{}"), now=1.0) is None
    assert len(outbox) == 0
    assert outbox.committed("m1", now=2.0) == []


def test_a_rejection_of_another_payload_under_the_same_number_settles_nothing() -> None:
    """Anything sent on the party's connection under its number 1 is rejected under 1 too (a
    fuzzer did it in CI); settling on the number alone dropped the real submission 1, which a
    round had sent ahead of its time, so the umpire never decided it."""
    outbox = Outbox(POLICY)
    real = sent(outbox, 1, at=0.0)
    garbage = b'{"kind":"submission","party":"alpha","seq":1,"message":{}}'
    assert outbox.rejected(1, rejection_id("p", 1, garbage), now=0.5) is None
    assert outbox.items == {1: real}
    assert outbox.progress_at == 0.0  # nothing of ours was settled
    assert outbox.rejected(1, rejection_id("p", 1, real.payload), now=0.6) is real
    assert len(outbox) == 0


def test_the_fast_codec_writes_what_the_umpire_reads_as_the_checked_one_does() -> None:
    message = Conversation("g0-1", "accepted", load_party("p000"), load_party("p001")).message(0)
    checked, fast = CheckedCodec(), FastCodec()
    decoded = [decode_from_party(c.submission("p000", 7, message)) for c in (checked, fast)]
    assert decoded[0] == decoded[1] == Submission(party="p000", seq=7, message=message)
    asks = [decode_from_party(c.catch_up_request("p000", 42)) for c in (checked, fast)]
    assert asks[0] == asks[1] == CatchUpRequest(party="p000", after=42)
    assert orjson.loads(fast.submission("p000", 7, message))["message"] == message
