"""The umpire's agenda: injects at their times, generated cases, injects on a condition."""

import random
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from simulator.eventlog import Event
from simulator.protocol import Message
from simulator.scenario import Scenario, load_scenario, parse_scenario
from simulator.umpire.agenda import ScenarioAgenda
from tests.scenario.samples import two_parties
from tests.umpire.committed import CommittedLog

SCENARIO = (
    two_parties("agenda-drill", "Agenda drill")
    + """\
injects:
  - id: late
    at: 3h
    send: &request
      type: written_request
      from: alpha
      to: beta
      case: case-1
      fields:
        area: public_order
        requesting_party_name: Alpha Agency
        requested_party_name: Beta Agency
        essence: Crowd safety at the final.
        purpose: Align stewarding rules.
        justification: Both states host supporters.
        assistance_sought: Copies of the crowd-safety regulations.
  - id: early
    at: 1h
    send: {<<: *request, case: case-2}
  - id: tied
    at: 3h
    send: {type: withdrawal, from: alpha, to: beta, case: case-3}
  - id: on-ack
    when: {case: case-1, message: acknowledgement}
    after: 2h
    send: {type: withdrawal, from: alpha, to: beta, case: case-1}
  - id: on-refusal
    when: {case: case-2, state: refused}
    after: 1d
    send:
      type: offer
      from: beta
      to: alpha
      case: offer-1
      fields: {area: public_order, description: Joint steward training.}
  - id: on-rule
    when: {rule: refusal-without-reasons, case: case-2}
    after: 4h
    send: {<<: *request, case: case-4}
generators:
  - id: routine
    from: alpha
    to: beta
    count: 3
    start: 1d
    every: 1h..5h
    send:
      type: written_request
      fields:
        area: public_order
        requesting_party_name: Alpha Agency
        requested_party_name: Beta Agency
        essence: Routine exchange of regulations.
        purpose: Align stewarding rules.
        justification: Both states host supporters.
        assistance_sought: Copies of the crowd-safety regulations.
"""
)


@pytest.fixture
def scenario() -> Scenario:
    return parse_scenario(SCENARIO, "tests/umpire/agenda-drill.yaml")


def agenda(scenario: Scenario, seed: int = 1) -> ScenarioAgenda:
    return ScenarioAgenda(scenario, random.Random(seed))


def at(scenario: Scenario, **offset: float) -> datetime:
    return scenario.start + timedelta(**offset)


def sources(due: list[tuple[Message, str]]) -> list[str]:
    return [source for _, source in due]


def schedule(subject: ScenarioAgenda) -> list[tuple[datetime, str]]:
    """Everything left on the agenda, taken as it comes due: (time, source)."""
    taken = []
    while (moment := subject.next_time()) is not None:
        taken += [(moment, source) for _, source in subject.due(moment)]
    return taken


def commit_due(log: CommittedLog, due: list[tuple[Message, str]], moment: datetime) -> list[Event]:
    """What the umpire does with what came due: record each as its sender's, from its source."""
    for message, source in due:
        log.sequencer.record(message, moment, party=message.sender, source=source)
    return log.commit()


def test_injects_come_due_in_time_order(scenario: Scenario) -> None:
    """Injects at offsets come due earliest first; those at one time in scenario order."""
    subject = agenda(scenario)
    assert subject.next_time() == at(scenario, hours=1)
    assert schedule(subject)[:3] == [
        (at(scenario, hours=1), "inject/early"),
        (at(scenario, hours=3), "inject/late"),
        (at(scenario, hours=3), "inject/tied"),
    ]


def test_due_returns_what_is_due_by_then_and_removes_it(scenario: Scenario) -> None:
    """`due(at)` hands out each inject due by `at` once, as its sender's message; others wait."""
    subject = agenda(scenario)
    assert subject.due(at(scenario, minutes=59)) == []
    due = subject.due(at(scenario, hours=3))
    assert sources(due) == ["inject/early", "inject/late", "inject/tied"]
    message = due[0][0]
    assert (message.message_id, message.case_id, message.sender, message.recipient) == (
        "inject.early",
        "case-2",
        "alpha",
        "beta",
    )
    assert subject.due(at(scenario, hours=3)) == []
    assert subject.next_time() == at(scenario, days=1)


def test_nothing_is_left_once_everything_came_due(scenario: Scenario) -> None:
    """After the last inject and generated case, `next_time` is None (conditions still wait)."""
    subject = agenda(scenario)
    subject.due(scenario.end)
    assert subject.next_time() is None
    assert subject.due(scenario.end) == []


def test_a_generator_makes_its_cases_at_seeded_intervals(scenario: Scenario) -> None:
    """Generated cases start at the offset, follow each other by `every`, one new case each."""
    subject = agenda(scenario)
    subject.due(at(scenario, hours=3))
    first = at(scenario, days=1)
    assert subject.next_time() == first
    due = subject.due(scenario.end)
    assert sources(due) == [f"generator/routine/{n}" for n in (1, 2, 3)]
    assert [m.case_id for m, _ in due] == ["routine-0001", "routine-0002", "routine-0003"]
    assert [m.message_id for m, _ in due] == [f"gen.routine.{n}" for n in (1, 2, 3)]


def generated_times(scenario: Scenario, seed: int) -> list[datetime]:
    return [t for t, source in schedule(agenda(scenario, seed)) if source.startswith("generator/")]


def test_the_same_seed_gives_the_same_generated_times(scenario: Scenario) -> None:
    """Two agendas with one seed place every generated case at the same time; another seed not."""
    times = generated_times(scenario, seed=5)
    assert times == generated_times(scenario, seed=5)
    assert times != generated_times(scenario, seed=6)
    assert times[0] == at(scenario, days=1)
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert all(timedelta(hours=1) <= gap <= timedelta(hours=5) for gap in gaps)


def test_a_conditioned_inject_waits_for_a_matching_committed_message(scenario: Scenario) -> None:
    """A message condition holds only for its case; the inject then comes due `after` it."""
    log = CommittedLog(scenario)
    subject = agenda(scenario)
    subject.observe(
        commit_due(log, subject.due(at(scenario, hours=3)), at(scenario, hours=3)), log.sequencer
    )
    subject.due(scenario.end)  # the generated cases, out of the way

    other_case = log.drafted(
        "acknowledgement", message_id="beta.1", case_id="case-2", sender="beta", recipient="alpha"
    )
    subject.observe([log.message(other_case, at(scenario, hours=4))], log.sequencer)
    assert subject.next_time() is None

    ack = log.drafted(
        "acknowledgement", message_id="beta.2", case_id="case-1", sender="beta", recipient="alpha"
    )
    event = log.message(ack, at(scenario, hours=5))
    subject.observe([event], log.sequencer)
    assert subject.next_time() == event.time + timedelta(hours=2)
    [(message, source)] = subject.due(event.time + timedelta(hours=2))
    assert (source, message.type, message.case_id) == ("inject/on-ack", "withdrawal", "case-1")

    # It fires once: the condition holding again schedules nothing.
    again = log.drafted(
        "acknowledgement", message_id="beta.3", case_id="case-1", sender="beta", recipient="alpha"
    )
    subject.observe([log.message(again, at(scenario, hours=8))], log.sequencer)
    assert subject.next_time() is None


def test_state_and_rule_conditions_follow_the_committed_case(scenario: Scenario) -> None:
    """A refusal without reasons puts case-2 in `refused` and breaks the rule: both injects fire."""
    log = CommittedLog(scenario)
    subject = agenda(scenario)
    subject.observe(
        commit_due(log, subject.due(at(scenario, hours=1)), at(scenario, hours=1)), log.sequencer
    )
    subject.due(scenario.end)
    refusal = log.drafted(
        "refusal",
        message_id="beta.1",
        case_id="case-2",
        sender="beta",
        recipient="alpha",
        fields={"reasons": ""},
        in_reply_to="inject.early",
    )
    event = log.message(refusal, at(scenario, days=2))
    assert "refusal-without-reasons" in {v["rule_id"] for v in event.data["violations"]}
    subject.observe([event], log.sequencer)
    assert schedule(subject) == [
        (event.time + timedelta(hours=4), "inject/on-rule"),
        (event.time + timedelta(days=1), "inject/on-refusal"),
    ]


def test_firing_an_unknown_inject_does_nothing(scenario: Scenario) -> None:
    """`fire_now` of an id no inject has returns False and leaves the agenda as it was."""
    subject = agenda(scenario)
    assert subject.fire_now("no-such-inject", scenario.start) is False
    assert subject.next_time() == at(scenario, hours=1)


def test_firing_a_waiting_inject_makes_it_due_now_and_only_once(scenario: Scenario) -> None:
    """A conditioned inject fired by the controller is due at once; it is not sent twice."""
    subject = agenda(scenario)
    now = at(scenario, minutes=10)
    assert subject.fire_now("on-ack", now) is True
    assert subject.next_time() == now
    assert sources(subject.due(now)) == ["inject/on-ack"]
    assert subject.fire_now("on-ack", now) is False

    # Its condition holding later schedules nothing more.
    log = CommittedLog(scenario)
    subject.observe(
        commit_due(log, subject.due(at(scenario, hours=3)), at(scenario, hours=3)), log.sequencer
    )
    ack = log.drafted(
        "acknowledgement", message_id="beta.1", case_id="case-1", sender="beta", recipient="alpha"
    )
    subject.observe([log.message(ack, at(scenario, hours=4))], log.sequencer)
    assert "inject/on-ack" not in {source for _, source in schedule(subject)}


def test_an_inject_fired_early_is_not_sent_again_at_its_time(scenario: Scenario) -> None:
    """An inject at an offset fired before its time comes due now, and not at its offset."""
    subject = agenda(scenario)
    now = at(scenario, minutes=10)
    assert subject.fire_now("late", now) is True
    assert sources(subject.due(now)) == ["inject/late"]
    assert sources(subject.due(at(scenario, hours=3))) == ["inject/early", "inject/tied"]


def test_an_inject_fired_early_leaves_no_timer_behind(scenario: Scenario) -> None:
    """Once an inject fired early has been sent, its original time is no longer a timer."""
    subject = agenda(scenario)
    subject.fire_now("early", scenario.start)
    subject.due(scenario.start)
    assert subject.next_time() == at(scenario, hours=3)


TWO_GENERATORS = """\
version: 1
exercise: agenda-fork
title: Two generators
start: 2026-03-02T09:00:00Z
duration: 30d
parties:
  - {id: alpha, name: Alpha, head: {name: A. Head}, deputies: [{name: A. Deputy}], seal: A,
     coordination_unit: Liaison Office}
  - {id: beta, name: Beta, head: {name: B. Head}, deputies: [{name: B. Deputy}], seal: B,
     coordination_unit: Liaison Office}
generators:
  - {id: one, from: alpha, to: beta, count: 4, every: 1h..5h, send: {type: withdrawal}}
  - {id: two, from: beta, to: alpha, count: 4, every: 1h..5h, send: {type: withdrawal}}
"""


def test_a_resumed_agenda_skips_what_the_log_holds() -> None:
    """`resume` after a prefix leaves out the injects and generated cases the prefix holds."""
    scenario = parse_scenario(TWO_GENERATORS)
    live = agenda(scenario)
    log = CommittedLog(scenario)
    first = live.next_time()
    assert first is not None
    live.observe(commit_due(log, live.due(first), first), log.sequencer)
    resumed = agenda(scenario)
    resumed.resume(log.events, log.sequencer)
    # The same cases at the same times: each generator draws from its own stream.
    assert schedule(resumed) == schedule(live)


SHIPPED = sorted((Path(__file__).parents[2] / "scenarios").glob("*.yaml"))


def agenda_run(scenario: Scenario) -> tuple[CommittedLog, list[tuple[datetime, str]]]:
    """The scenario's agenda run on its own, each instant's cases committed and observed."""
    live, log = agenda(scenario), CommittedLog(scenario)
    taken = []
    while (moment := live.next_time()) is not None and moment <= scenario.end:
        due = live.due(moment)
        taken += [(moment, source) for _, source in due]
        live.observe(commit_due(log, due, moment), log.sequencer)
    return log, taken


def assert_resumes_as_it_ran(scenario: Scenario) -> None:
    """An agenda resumed after every prefix of its run's log sends the rest as the run did."""
    log, taken = agenda_run(scenario)
    assert taken, f"{scenario.exercise}: the agenda sent nothing"
    for position in range(1, len(log.events)):
        prefix = log.events[:position]
        resumed = agenda(scenario)
        resumed.resume(prefix, log.sequencer)
        held = {event.source for event in prefix}
        rest = [(moment, source) for moment, source in taken if source not in held]
        went_on: list[tuple[datetime, str]] = []
        # The rest of the log, observed as it came: conditions hold again on it.
        events = iter(log.events[position:])
        while (moment := resumed.next_time()) is not None and moment <= scenario.end:
            due = resumed.due(moment)
            went_on += [(moment, source) for _, source in due]
            resumed.observe([next(events) for _ in due], log.sequencer)
        assert went_on == rest, f"{scenario.exercise} resumed at {position}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_an_agenda_resumed_at_any_position_goes_on_as_the_run_did(path: Path) -> None:
    """What comes due at one instant comes in the run's order after any prefix of its log.

    Before, entries due at the same instant were ordered by when they were pushed, and
    a resumed agenda pushes in another sequence: forked at 16..30, four-rivers-season
    sent its second records case before its first offer, where the run had it after.
    """
    assert_resumes_as_it_ran(load_scenario(path))


# Everything due at 2h and at 4h is due together; each kind of tie once.
TIES = (
    two_parties("agenda-ties", "Agenda ties")
    + """\
injects:
  - id: fixed
    at: 2h
    send: {type: withdrawal, from: alpha, to: beta, case: case-f}
  - id: req-a
    at: 1h
    send: {type: withdrawal, from: alpha, to: beta, case: case-a}
  - id: req-b
    at: 1h
    send: {type: withdrawal, from: alpha, to: beta, case: case-b}
  # Listed before on-a, though its condition holds after on-a's.
  - id: on-b
    when: {case: case-b, message: withdrawal}
    after: 1h
    send: {type: withdrawal, from: alpha, to: beta, case: case-b}
  - id: on-a
    when: {case: case-a, message: withdrawal}
    after: 1h
    send: {type: withdrawal, from: alpha, to: beta, case: case-a}
generators:
  # Listed before `two`, though its cases go out after two's at 2h and 4h.
  - {id: one, from: alpha, to: beta, count: 3, every: 2h, send: {type: withdrawal}}
  - {id: two, from: beta, to: alpha, count: 2, start: 2h, every: 2h, send: {type: withdrawal}}
"""
)


def test_what_is_due_at_one_instant_goes_out_in_the_order_it_was_scheduled() -> None:
    """The scenario's own first; a generator's next case in the order the cases before
    went out; conditions' injects in the order their conditions held; then as listed.

    The order a run had with an insertion counter, so logs recorded before are the same.
    """
    scenario = parse_scenario(TIES, "tests/umpire/agenda-ties.yaml")
    _, taken = agenda_run(scenario)
    assert [source for moment, source in taken if moment == at(scenario, hours=2)] == [
        "inject/fixed",
        "generator/two/1",  # scheduled as the run began; one/2 when one/1 went out
        "generator/one/2",
        "inject/on-a",  # req-a went out before req-b
        "inject/on-b",
    ]
    # Both scheduled at 2h; one/2 went out after two/1, so one/3 goes out after two/2.
    assert [source for moment, source in taken if moment == at(scenario, hours=4)] == [
        "generator/two/2",
        "generator/one/3",
    ]
    assert_resumes_as_it_ran(scenario)


CUT_AMONG = (
    two_parties("agenda-cut", "Agenda cut")
    + """\
injects:
  - id: x1
    at: 1h
    send: {type: withdrawal, from: alpha, to: beta, case: case-1}
  - id: x2
    at: 1h
    send: {type: withdrawal, from: alpha, to: beta, case: case-2}
  - id: on-x1
    when: {case: case-1, message: withdrawal}
    send: {type: withdrawal, from: beta, to: alpha, case: case-1}
"""
)


def test_a_log_cut_among_an_instants_timers_hands_their_rest_first() -> None:
    """`rest_of_instant`: what the run took with the log's last timers, and nothing that
    they made due (the run took that later, after the parties' round)."""
    scenario = parse_scenario(CUT_AMONG)
    log, taken = agenda_run(scenario)
    hour = at(scenario, hours=1)
    assert taken == [(hour, "inject/x1"), (hour, "inject/x2"), (hour, "inject/on-x1")]
    resumed = agenda(scenario)
    resumed.resume(log.events[:1], log.sequencer)
    rest = resumed.rest_of_instant(hour)
    assert rest is not None
    assert sources(rest) == ["inject/x2"]
    # Asked once: a later round at that instant is not a cut.
    assert resumed.rest_of_instant(hour) is None
    assert sources(resumed.due(hour)) == ["inject/on-x1"]


def test_a_log_that_ends_after_a_partys_message_is_not_cut_among_timers() -> None:
    scenario = parse_scenario(CUT_AMONG)
    log, _ = agenda_run(scenario)
    hour = at(scenario, hours=1)
    # Ended after all of that instant's timers: nothing is left of them.
    whole = agenda(scenario)
    whole.resume(log.events, log.sequencer)
    assert whole.rest_of_instant(hour) == []
    # Ended after a party's message at that instant: the parties had acted.
    log.message(
        log.drafted(
            "withdrawal", message_id="alpha.1", case_id="case-3", sender="alpha", recipient="beta"
        ),
        hour,
    )
    after_party = agenda(scenario)
    after_party.resume(log.events, log.sequencer)
    assert after_party.rest_of_instant(hour) is None
    # And a run that was not resumed has no cut.
    assert agenda(scenario).rest_of_instant(hour) is None
