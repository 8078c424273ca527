"""The policy engine plans a simulated party's replies from the committed events it sees."""

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from simulator.eventlog import Event
from simulator.party.policy import PolicyEngine
from simulator.scenario import Scenario, load_scenario, parse_scenario
from simulator.signing import tamper
from tests.scenario.samples import EXAMPLE, two_parties
from tests.umpire.committed import CommittedLog

SCENARIO = (
    two_parties("policy-drill", "Policy engine drill", beta_policy="answerer")
    + """\
policies:
  answerer:
    on:
      written_request:
        - reply: acknowledgement
          after: 2h
          then:
            - reply: acceptance
              after: 1d
            - reply: results
              after: 3d
              fields: {summary: Regulations sent.}
      oral_request:
        - reply: acknowledgement
          after: 30m
injects:
  - id: urgent
    at: 1h
    send:
      type: oral_request
      from: alpha
      to: beta
      case: case-9
      fields:
        area: public_order
        urgent: true
        requesting_party_name: Alpha Agency
        requested_party_name: Beta Agency
        essence: A consignment is missing.
        purpose: Trace it.
        justification: It is needed at once.
        assistance_sought: Check the transit yards.
    then:
      - reply: written_confirmation
        after: 1d
"""
)

REQUEST: dict[str, Any] = {
    "area": "public_order",
    "essence": "Crowd safety at the final.",
    "purpose": "Align stewarding rules.",
    "justification": "Both states host supporters.",
    "assistance_sought": "Copies of the crowd-safety regulations.",
}
ORAL = {**REQUEST, "urgent": True}


@pytest.fixture
def scenario() -> Scenario:
    return parse_scenario(SCENARIO, "tests/party/policy-drill.yaml")


@pytest.fixture
def log(scenario: Scenario) -> CommittedLog:
    return CommittedLog(scenario)


def engine(scenario: Scenario, party: str, seed: int = 1) -> PolicyEngine:
    return PolicyEngine(scenario.party(party).party(), scenario, random.Random(seed))


def request(log: CommittedLog, case: str, minutes: int, kind: str = "written_request") -> Event:
    """`alpha`'s request in `case`, committed `minutes` after the start."""
    data = log.drafted(
        kind,
        message_id=f"alpha.{case}",
        case_id=case,
        sender="alpha",
        recipient="beta",
        fields=ORAL if kind == "oral_request" else REQUEST,
    )
    return log.message(data, log.scenario.start + timedelta(minutes=minutes))


def test_a_received_request_is_answered_as_the_policy_says_after_its_delay(
    scenario: Scenario, log: CommittedLog
) -> None:
    """A written request plans the policy's reply to its sender at the event's time plus 2h."""
    beta = engine(scenario, "beta")
    event = request(log, "case-1", minutes=60)
    beta.observe(event)
    [plan] = beta.plans.values()
    assert (plan.seq, plan.kind, plan.case_id) == (1, "acknowledgement", "case-1")
    assert (plan.recipient, plan.in_reply_to) == ("alpha", "alpha.case-1")
    assert plan.due == event.time + timedelta(hours=2)
    assert beta.position == event.position


def test_plans_come_due_in_due_then_sequence_order_and_only_when_due(
    scenario: Scenario, log: CommittedLog
) -> None:
    """`due(now)` lists unsent plans due by `now`, earliest first, ties in sequence order."""
    beta = engine(scenario, "beta")
    start = scenario.start
    beta.observe(request(log, "case-1", minutes=0))  # seq 1, due 2:00
    beta.observe(request(log, "case-2", minutes=30, kind="oral_request"))  # seq 2, due 1:00
    beta.observe(request(log, "case-3", minutes=90, kind="oral_request"))  # seq 3, due 2:00
    assert beta.next_due() == start + timedelta(hours=1)
    assert beta.due(start + timedelta(minutes=59)) == []
    assert [p.seq for p in beta.due(start + timedelta(hours=1))] == [2]
    assert [p.seq for p in beta.due(start + timedelta(hours=2))] == [2, 1, 3]
    beta.plans[2].submitted = True
    assert beta.next_due() == start + timedelta(hours=2)
    assert [p.seq for p in beta.due(start + timedelta(days=1))] == [1, 3]


def test_with_nothing_planned_nothing_is_due() -> None:
    """A party that received nothing has no next action."""
    beta = engine(parse_scenario(SCENARIO), "beta")
    assert beta.next_due() is None
    assert beta.due(beta.scenario.end) == []


def test_a_committed_reply_is_done_and_its_follow_ups_count_from_the_commit(
    scenario: Scenario, log: CommittedLog
) -> None:
    """The reply's commit settles its plan and starts its `then` chain from the commit time."""
    beta = engine(scenario, "beta")
    beta.observe(request(log, "case-1", minutes=0))
    [ack] = beta.due(scenario.end)
    late = ack.due + timedelta(minutes=5)
    beta.observe(log.message(beta.message(ack), late))
    assert ack.done
    [acceptance] = beta.due(scenario.end)
    assert (acceptance.seq, acceptance.kind, acceptance.due) == (
        2,
        "acceptance",
        late + timedelta(days=1),
    )
    assert (acceptance.recipient, acceptance.in_reply_to) == ("alpha", "beta.1")

    # The chain goes on from the acceptance's own commit.
    later = acceptance.due + timedelta(hours=1)
    beta.observe(log.message(beta.message(acceptance), later))
    [results] = beta.due(scenario.end)
    assert (results.seq, results.kind, results.due) == (3, "results", later + timedelta(days=3))


def test_an_injects_follow_up_is_planned_when_the_inject_is_committed(
    scenario: Scenario, log: CommittedLog
) -> None:
    """The sender of an inject plans the inject's `then`, here the oral request's confirmation."""
    alpha = engine(scenario, "alpha")
    oral = log.drafted(
        "oral_request",
        message_id="inject.urgent",
        case_id="case-9",
        sender="alpha",
        recipient="beta",
        fields=ORAL,
    )
    event = log.message(oral, scenario.start + timedelta(hours=1), source="inject/urgent")
    alpha.observe(event)
    [plan] = alpha.plans.values()
    assert (plan.kind, plan.due) == ("written_confirmation", event.time + timedelta(days=1))
    assert plan.fields["confirms"] == "inject.urgent"


def _withdraw(log: CommittedLog, case: str, at_hours: float) -> Event:
    data = log.drafted(
        "withdrawal",
        message_id=f"alpha.withdraws.{case}",
        case_id=case,
        sender="alpha",
        recipient="beta",
        fields={"reason": "The consignment turned up at home."},
    )
    return log.message(data, log.scenario.start + timedelta(hours=at_hours))


def _accepted(beta: PolicyEngine, log: CommittedLog, case: str) -> None:
    """beta acknowledges `case` and accepts it: its results are planned 3 days on."""
    beta.observe(request(log, case, minutes=0))
    for _ in range(2):
        [plan] = [p for p in beta.due(beta.scenario.end) if p.case_id == case]
        beta.observe(log.message(beta.message(plan), plan.due))


def test_a_withdrawal_drops_what_the_party_planned_in_its_case(
    scenario: Scenario, log: CommittedLog
) -> None:
    """A withdrawn request is not worked on: the planned results go, sent ahead or not.

    Only the withdrawn case's plans: another case's go on. The dropped plans are
    handed to the runtime once (`take_retracted`), which takes back what it sent.
    """
    beta = engine(scenario, "beta")
    _accepted(beta, log, "case-1")
    _accepted(beta, log, "case-2")
    results = {p.case_id: p for p in beta.due(scenario.end)}
    assert sorted(results) == ["case-1", "case-2"]
    assert all(p.kind == "results" for p in results.values())
    results["case-1"].submitted = True  # sent ahead of its time, in a round
    beta.observe(_withdraw(log, "case-1", at_hours=30))
    assert results["case-1"].done
    assert [p.case_id for p in beta.due(scenario.end)] == ["case-2"]
    assert beta.take_retracted() == {results["case-1"].seq}
    assert beta.take_retracted() == set()


def test_nothing_in_a_withdrawn_case_starts_a_plan(scenario: Scenario, log: CommittedLog) -> None:
    """What still comes in a withdrawn case (a trainee's second request in it) is not answered."""
    beta = engine(scenario, "beta")
    beta.observe(request(log, "case-1", minutes=0))
    beta.observe(_withdraw(log, "case-1", at_hours=1))
    data = log.drafted(
        "written_request",
        message_id="alpha.again",
        case_id="case-1",
        sender="alpha",
        recipient="beta",
        fields=REQUEST,
    )
    beta.observe(log.message(data, scenario.start + timedelta(hours=2)))
    assert beta.due(scenario.end) == []


def test_a_party_that_misses_withdrawals_carries_on() -> None:
    """The training mistake `miss_withdrawal`: the results still come (the umpire's case-closed)."""
    erring = parse_scenario(
        SCENARIO.replace(
            "  answerer:\n", "  answerer:\n    mistakes:\n      miss_withdrawal: 1.0\n", 1
        )
    )
    log = CommittedLog(erring)
    beta = engine(erring, "beta")
    _accepted(beta, log, "case-1")
    beta.observe(_withdraw(log, "case-1", at_hours=30))
    assert [p.kind for p in beta.due(erring.end)] == ["results"]
    assert beta.take_retracted() == set()
    # It says it may act on a withdrawal no sooner than any other event: it never does.
    assert "withdrawal" not in beta.lookahead().received


def test_a_forked_party_counts_what_its_parent_sent_in_a_withdrawn_case() -> None:
    """Its answer to a withdrawal, sent under the parent run's message id, is not sent again
    by a fork that replays the parent's log: it settles the plan as any of its messages does."""
    answering = parse_scenario(
        SCENARIO.replace(
            "      oral_request:\n",
            "      withdrawal:\n        - reply: acknowledgement\n          after: 1h\n"
            "      oral_request:\n",
            1,
        )
    )
    log = CommittedLog(answering)
    parent = engine(answering, "beta")
    course = [request(log, "case-1", minutes=0), _withdraw(log, "case-1", at_hours=1)]
    for event in course:
        parent.observe(event)
    [answer] = parent.due(answering.end)
    assert answer.kind == "acknowledgement"
    course.append(log.message(parent.message(answer), answer.due))
    fork = PolicyEngine(answering.party("beta").party(), answering, random.Random(1), generation=1)
    for event in course:
        fork.observe(event)
    assert fork.due(answering.end) == []


def test_a_rejected_submission_is_settled(scenario: Scenario, log: CommittedLog) -> None:
    """The umpire's rejection of the party's own seq, once sent, marks that plan done."""
    beta = engine(scenario, "beta")
    beta.observe(request(log, "case-1", minutes=0))
    beta.observe(request(log, "case-2", minutes=0))
    beta.plans[1].submitted = True
    beta.observe(log.rejection("beta", 1, scenario.start + timedelta(hours=2), "malformed"))
    assert beta.plans[1].done
    assert not beta.plans[2].done
    # Naming the plan's message, a rejection settles it sent or not (a log read again).
    own = beta.message(beta.plans[2])["message_id"]
    beta.observe(log.rejection("beta", 2, scenario.start + timedelta(hours=2), "no", own))
    assert beta.plans[2].done


def test_a_rejection_of_another_payload_under_a_plans_number_leaves_it_due(
    scenario: Scenario, log: CommittedLog
) -> None:
    """A plan's number is taken when it is planned; anything else sent under that number on the
    party's connection is rejected under it too. Taken for the plan's, it dropped a message
    sent ahead of its time before it was decided (a fuzzer found it over a real broker)."""
    beta = engine(scenario, "beta")
    beta.observe(request(log, "case-1", minutes=0))
    at = scenario.start + timedelta(minutes=1)
    beta.observe(log.rejection("beta", 1, at, "claims party 'alpha'"))
    beta.observe(log.rejection("beta", 1, at, "id used already", message_id="beta.999"))
    assert not beta.plans[1].done
    assert [p.seq for p in beta.due(scenario.end)] == [1]


def test_a_rejection_for_another_party_changes_nothing(
    scenario: Scenario, log: CommittedLog
) -> None:
    """Only a rejection addressed to the party itself settles one of its plans."""
    beta = engine(scenario, "beta")
    beta.observe(request(log, "case-1", minutes=0))
    beta.observe(log.rejection("alpha", 1, scenario.start, "malformed"))
    assert not beta.plans[1].done


def test_an_event_at_or_before_the_last_position_is_ignored(
    scenario: Scenario, log: CommittedLog
) -> None:
    """Folding an event again (a redelivery) plans nothing new."""
    beta = engine(scenario, "beta")
    event = request(log, "case-1", minutes=0)
    beta.observe(event)
    beta.observe(event)
    assert list(beta.plans) == [1]


def test_a_forged_request_is_answered_by_asking_for_confirmation(
    scenario: Scenario, log: CommittedLog
) -> None:
    """A written request whose signature does not verify gets a confirmation_request at once."""
    beta = engine(scenario, "beta")
    drafted = log.drafted(
        "written_request",
        message_id="alpha.1",
        case_id="case-1",
        sender="alpha",
        recipient="beta",
        fields=REQUEST,
    )
    forged = tamper(log.signatories, drafted, "signature")
    event = log.message(forged, scenario.start)
    beta.observe(event)
    [plan] = beta.plans.values()
    assert (plan.kind, plan.due) == ("confirmation_request", event.time)
    assert (plan.recipient, plan.in_reply_to) == ("alpha", "alpha.1")


def played(log: CommittedLog, party: str, seed: int, *, days: int) -> PolicyEngine:
    """`party`'s engine after what `log` holds, its replies committed when due for `days`."""
    subject = engine(log.scenario, party, seed)
    for event in list(log.events):
        subject.observe(event)
    horizon = log.scenario.start + timedelta(days=days)
    while (moment := subject.next_due()) is not None and moment <= horizon:
        for plan in subject.due(moment):
            subject.observe(log.message(subject.message(plan), moment))
    return subject


def plans_of(subject: PolicyEngine) -> list[dict[str, Any]]:
    # Plan equality compares only (due, seq): compare every field.
    return [vars(plan) for plan in subject.plans.values()]


@pytest.mark.parametrize("seed", [7, 11])
def test_the_same_events_and_seed_give_the_same_plans(seed: int) -> None:
    """A fresh engine folding the same log with the same seed makes the same plans (a restart)."""
    scenario = load_scenario(EXAMPLE)
    log = CommittedLog(scenario)
    requests = []
    for n in range(1, 7):
        data = log.drafted(
            "written_request",
            message_id=f"northmark.r{n}",
            case_id=f"case-{n}",
            sender="northmark",
            recipient="southmere",
            fields=REQUEST,
        )
        requests.append(log.message(data, scenario.start + timedelta(hours=n)))
    live = played(log, "southmere", seed, days=20)
    assert len(live.plans) > len(requests)

    restarted = engine(scenario, "southmere", seed)
    for event in log.events:
        restarted.observe(event)
    again = engine(scenario, "southmere", seed)
    for event in log.events:
        again.observe(event)

    assert plans_of(restarted) == plans_of(live)
    assert plans_of(again) == plans_of(restarted)
    assert restarted.next_seq == live.next_seq


def test_another_seed_gives_other_plans() -> None:
    """The seed is what varies the plans: other draws, other delays and choices."""
    scenario = load_scenario(EXAMPLE)
    log = CommittedLog(scenario)
    data = log.drafted(
        "written_request",
        message_id="northmark.r1",
        case_id="case-1",
        sender="northmark",
        recipient="southmere",
        fields=REQUEST,
    )
    event = log.message(data, scenario.start)
    one, other = engine(scenario, "southmere", 7), engine(scenario, "southmere", 8)
    one.observe(event)
    other.observe(event)
    assert plans_of(one) != plans_of(other)


def test_the_lookahead_is_the_least_delay_of_each_step_an_event_may_start() -> None:
    """A message to the party starts its policy's response; its own, the next steps of a chain.

    beta answers a written request after 2h, its acknowledgement is followed by
    an acceptance after 1d, and that acceptance by the results after 3d (the
    next step of the same `then` list). The inject's oral request is followed
    by its confirmation after 1d. Types no step follows are absent: never acted on.
    """
    scenario = parse_scenario(SCENARIO)
    beta = PolicyEngine(scenario.party("beta"), scenario, random.Random(1)).lookahead()
    assert beta.received == {
        "written_request": timedelta(hours=2),
        "oral_request": timedelta(minutes=30),
        "withdrawal": timedelta(0),
    }
    assert beta.own == {
        "acknowledgement": timedelta(days=1),
        "acceptance": timedelta(days=3),
        "oral_request": timedelta(days=1),
        "withdrawal": timedelta(0),
    }
    alpha = PolicyEngine(scenario.party("alpha"), scenario, random.Random(1)).lookahead()
    # A withdrawal drops a party's plans in its case at once, sent or received.
    assert alpha.received == {"withdrawal": timedelta(0)}
    # No policy: only the inject's chain, and the withdrawal's.
    assert alpha.own == {"oral_request": timedelta(days=1), "withdrawal": timedelta(0)}


def test_a_party_that_doubts_forged_requests_promises_nothing_about_requests() -> None:
    """A forged request is answered at once (Art. 4.2): no wait on requests it receives."""
    forged = load_scenario(Path(__file__).parents[2] / "scenarios" / "forged-request.yaml")
    for party in forged.parties:
        engine = PolicyEngine(party, forged, random.Random(1))
        if engine.policy is None or engine.mistakes.act_on_forged_request >= 1:
            continue
        promise = engine.lookahead()
        assert promise.received["written_request"] == timedelta(0)
        assert promise.received["written_confirmation"] == timedelta(0)
