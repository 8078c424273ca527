"""The umpire's decisions on submissions, before any broker or store is involved."""

import json
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant

from simulator.messaging.wire import Submission, encode
from simulator.protocol import deadlines, elapse
from simulator.records import CLOCK_ELAPSED, REJECTION, read_violations
from simulator.umpire.sequencer import DEADLINE_GRACE_SECONDS, Sequencer
from tests.protocol.builders import AGREEMENT, T0, build
from tests.protocol.test_state_machine import ProcedureMachine


def _sequencer() -> Sequencer:
    return Sequencer(AGREEMENT, "drill", wallclock=lambda: T0)


def _payload(kind: str, *, seq: int = 1, party: str = "alpha", **overrides: object) -> bytes:
    sender = str(overrides.pop("sender", party))
    recipient = str(overrides.pop("recipient", "beta" if sender != "beta" else "alpha"))
    message = build(
        kind,
        case_id=str(overrides.pop("case_id", "case-1")),
        message_id=str(overrides.pop("message_id", f"{party}.{seq}")),
        sender=sender,
        recipient=recipient,
        **overrides,
    )
    return encode(Submission(party=party, seq=seq, message=message.model_dump(mode="json")))


def test_valid_submission_becomes_a_message_event() -> None:
    """A well-formed request is staged as one coop.msg event with no violations."""
    seq = _sequencer()
    decision = seq.submit(_payload("written_request"), "alpha", T0)
    assert decision.notice is None
    assert decision.event is not None
    assert decision.event.type == "coop.msg.written_request"
    assert decision.event.id == "alpha.1"
    assert read_violations(decision.event) == ()


def test_oversize_payload_is_rejected_before_decoding() -> None:
    """A payload over the limit is refused with its size, and recorded as a rejection."""
    seq = Sequencer(AGREEMENT, "drill", wallclock=lambda: T0, max_payload=1000)
    decision = seq.submit(b"{" + b" " * 2000 + b"}", "alpha", T0)
    assert decision.notice is not None
    assert "2002 bytes exceeds the limit of 1000" in decision.notice.reason
    assert decision.event is not None
    assert decision.event.type == REJECTION
    assert decision.event.recipient == "alpha"


def test_malformed_payloads_are_rejected_with_a_reason() -> None:
    """Not JSON, NaN, a list, deep nesting and wrong fields each get a reason naming the fault."""
    seq = _sequencer()
    cases = {
        b"not json": "not JSON",
        b'{"kind":"submission","party":"alpha","seq":NaN,"message":{}}': "NaN",
        b"[1,2]": "expected a JSON object",
        b'{"a":' * 100 + b"1" + b"}" * 100: "nested deeper",
        b"\xff\xfe": "not UTF-8",
        json.dumps({"kind": "submission", "party": "alpha", "seq": 1, "message": {}}).encode(): (
            "message:"
        ),
    }
    for payload, reason in cases.items():
        decision = seq.submit(payload, "alpha", T0)
        assert decision.notice is not None, payload
        assert reason in decision.notice.reason, (payload, decision.notice.reason)
    assert len(seq.pending.events) == len(cases)


def test_an_impediment_notice_with_a_negative_delay_is_refused_at_the_door() -> None:
    """The model takes it (old logs holding one must load); a new one is refused, naming
    the field, and recorded as a rejection to its sender. Zero and positive delays pass."""
    seq = _sequencer()
    late = _payload("impediment_notice", party="beta", expected_delay="-P2D")
    decision = seq.submit(late, "beta", T0)
    assert decision.notice is not None
    assert decision.notice.reason == (
        "message: expected_delay: an expected delay cannot be negative (got -2 days, 0:00:00)"
    )
    assert decision.event is not None
    assert decision.event.type == REJECTION
    assert decision.event.recipient == "beta"
    for n, delay in enumerate(("PT0S", "P3D"), start=2):
        fine = _payload("impediment_notice", seq=n, party="beta", expected_delay=delay)
        decided = seq.submit(fine, "beta", T0)
        assert decided.notice is None
        assert decided.event is not None
        assert decided.event.type == "coop.msg.impediment_notice"


def test_spoofed_party_is_rejected() -> None:
    """A submission claiming another party than its connection's is refused."""
    seq = _sequencer()
    decision = seq.submit(_payload("written_request", party="beta", sender="beta"), "alpha", T0)
    assert decision.notice is not None
    assert "came from 'alpha'" in decision.notice.reason


def test_spoofed_sender_is_rejected() -> None:
    """A message whose sender is not the connection's party is refused."""
    seq = _sequencer()
    decision = seq.submit(
        _payload("written_request", party="alpha", sender="gamma", recipient="beta"), "alpha", T0
    )
    assert decision.notice is not None
    assert "sender 'gamma' is not the connection's party 'alpha'" in decision.notice.reason


def test_resend_is_a_duplicate_and_reuse_is_rejected() -> None:
    """The same message again is a no-op; another message under the same id is refused."""
    seq = _sequencer()
    seq.submit(_payload("written_request"), "alpha", T0)
    seq.committed(seq.take())
    again = seq.submit(_payload("written_request"), "alpha", T0)
    assert again.event is None
    assert again.duplicate_of == "alpha.1"
    reused = seq.submit(_payload("oral_request", seq=2, message_id="alpha.1"), "alpha", T0)
    assert reused.notice is not None
    assert "already used" in reused.notice.reason


def test_reply_to_unknown_case_is_recorded_with_its_violation() -> None:
    """A reply in a case never opened is recorded, not dropped, and carries unknown-case."""
    seq = _sequencer()
    decision = seq.submit(_payload("acceptance", party="beta", sender="beta"), "beta", T0)
    assert decision.notice is None
    assert decision.event is not None
    violations = read_violations(decision.event)
    assert violations is not None
    assert [v.rule_id for v in violations] == ["unknown-case"]


def test_a_dropped_batch_changes_nothing() -> None:
    """Until a batch is committed, the sequencer's own view does not change."""
    seq = _sequencer()
    seq.submit(_payload("written_request"), "alpha", T0)
    seq.take()  # the append failed; the batch is dropped
    assert seq.cases == {}
    again = seq.submit(_payload("written_request"), "alpha", T0)
    assert again.event is not None


def test_deadlines_are_staged_once_after_they_pass() -> None:
    """An unconfirmed oral request lapses one grace second after 3 days, once."""
    seq = _sequencer()
    seq.submit(_payload("oral_request"), "alpha", T0)
    seq.committed(seq.take())
    due = seq.next_deadline()
    assert due == T0 + timedelta(days=3, seconds=1)
    staged = seq.elapse_due(due, lambda case: f"elapsed-{case}")
    assert [e.type for e in staged] == [CLOCK_ELAPSED]
    assert staged[0].data["parties"] == ["alpha", "beta"]
    seq.committed(seq.take())
    assert seq.case("case-1") is not None
    assert seq.next_deadline() is None
    assert seq.elapse_due(due + timedelta(days=1), lambda case: "x") == []


def test_timers_walk_only_cases_with_an_open_obligation() -> None:
    """Lapsed, overdue and closed cases drop out of the timer walk; open ones stay in it."""
    seq = _sequencer()
    plays = [
        ("oral_request", "alpha", "case-1"),  # awaits its written confirmation
        ("written_request", "alpha", "case-2"),
        ("acceptance", "beta", "case-2"),
        ("results", "beta", "case-2"),  # closed
        ("written_request", "alpha", "case-3"),
        ("acceptance", "beta", "case-3"),  # executing: results owed
    ]
    counts = {"alpha": 0, "beta": 0}
    for kind, party, case_id in plays:
        counts[party] += 1
        n = counts[party]
        decision = seq.submit(
            _payload(kind, seq=n, party=party, case_id=case_id, message_id=f"{party}.{n}"),
            party,
            T0,
        )
        assert decision.notice is None, decision.notice
    seq.committed(seq.take())
    assert set(seq._watched) == {"case-1", "case-3"}
    staged = seq.elapse_due(T0 + timedelta(days=60), lambda case: f"elapsed-{case}")
    assert [e.subject for e in staged] == ["case-1", "case-3"]
    seq.committed(seq.take())
    assert not seq._watched
    assert seq.next_deadline() is None
    assert seq.elapse_due(T0 + timedelta(days=90), lambda case: "x") == []


def test_cases_lapsing_together_are_staged_in_case_order() -> None:
    """Deadlines passing at one instant are staged by case id, ids handed out in that order."""
    seq = _sequencer()
    for n, case_id in enumerate(["case-c", "case-a", "case-d", "case-b"], start=1):
        seq.submit(_payload("oral_request", seq=n, case_id=case_id), "alpha", T0)
    seq.committed(seq.take())
    # case-d is answered in writing in time: it does not lapse.
    seq.submit(
        _payload("written_confirmation", seq=5, case_id="case-d", confirms="alpha.3"), "alpha", T0
    )
    seq.committed(seq.take())
    counter = iter(range(1, 100))

    staged = seq.elapse_due(T0 + timedelta(days=4), lambda case: f"elapsed-{next(counter)}-{case}")

    assert [e.id for e in staged] == [
        "elapsed-1-case-a",
        "elapsed-2-case-b",
        "elapsed-3-case-c",
    ]
    assert seq.pending.events == staged


def test_a_completed_oral_request_still_wakes_the_umpire_for_its_confirmation() -> None:
    """Art. 4.2 runs alongside: results in, no confirmation, the 3 days still fire once."""
    seq = _sequencer()
    seq.submit(_payload("oral_request"), "alpha", T0)
    seq.submit(_payload("acceptance", party="beta"), "beta", T0 + timedelta(hours=1))
    seq.submit(_payload("results", seq=2, party="beta"), "beta", T0 + timedelta(hours=2))
    seq.committed(seq.take())
    case = seq.case("case-1")
    assert case is not None
    assert case.state == "completed"
    due = seq.next_deadline()
    assert due == T0 + timedelta(days=3, seconds=1)
    staged = seq.elapse_due(due, lambda case: f"elapsed-{case}")
    assert [v.rule_id for v in read_violations(staged[0]) or ()] == ["oral-request-not-confirmed"]
    seq.committed(seq.take())
    assert seq.case("case-1") is not None
    assert seq.next_deadline() is None


class _WatchedFold(ProcedureMachine):
    """The protocol's random folds, checking what the sequencer's watch list takes for granted."""

    @invariant()
    def a_case_without_an_oral_request_or_execution_has_no_deadline(self) -> None:
        sequencer = _sequencer()
        walked = []
        for case in self.cases.values():
            if case is None:
                continue
            if case.oral_at is None and case.execution_started_at is None:
                assert deadlines(case, AGREEMENT.settings, AGREEMENT.profile) == ()
            sequencer._watch([case])
            open_ = sequencer._open_deadlines(case)
            assert (case.case_id in sequencer._watched) == bool(open_)
            if open_:
                # The moment kept for the case is its soonest open deadline, as the walk
                # over its deadlines that next_deadline once made found it; until it has
                # passed, a timer finds nothing to do in the case (so elapse_due skips it).
                soonest = min(d.due_at for d in open_)
                assert sequencer._watched[case.case_id] == soonest
                assert elapse(case, soonest, AGREEMENT) == (case, ())
                walked.append(soonest + timedelta(seconds=DEADLINE_GRACE_SECONDS))
        assert sequencer.next_deadline() == min(walked, default=None)


_WatchedFold.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_watch_list_holds_the_cases_with_an_open_deadline = _WatchedFold.TestCase
