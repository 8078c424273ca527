"""The umpire's timeline from a scenario: injects, generated cases, conditioned injects.

Times are fixed when the run starts (injects at an offset) or when the
condition first holds (conditioned injects); generated cases follow each
other by a seeded delay. The umpire commits each as the message its sender
would have sent, recorded with the inject as its source, so the sender's
follow-ups (`then`) can find it.

Every generator and every conditioned inject draws its delays from a seeded
stream of its own, and conditions are judged after each committed event on
the agenda's own fold of the cases. So what the agenda does depends only on
the log, never on how the events were batched or which draw came first: an
agenda resumed from any position of a log (a fork, a resumed run) goes on
exactly as the original did.
"""

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from simulator.errors import ScenarioError
from simulator.eventlog import Event, NewEvent
from simulator.protocol import Case, Message, Party, outsider, parse_message
from simulator.protocol.drafting import draft
from simulator.records import CLOCK_ELAPSED, is_message_event, read_violations
from simulator.scenario.model import (
    CaseStateCondition,
    Generator,
    Inject,
    MessageCondition,
    MessageTemplate,
    RuleCondition,
    Scenario,
    inject_message_id,
)
from simulator.signing import Signatories, Tamper, tamper
from simulator.umpire.sequencer import Sequencer, fold_committed


def inject_source(inject_id: str) -> str:
    return f"inject/{inject_id}"


def generator_source(generator_id: str, number: int) -> str:
    return f"generator/{generator_id}/{number}"


def generated_case(generator_id: str, number: int) -> str:
    return f"{generator_id}-{number:04d}"


# How the sources of the agenda's messages begin (`inject_source`, `generator_source`).
_AGENDA_SOURCES = ("inject/", "generator/")


def _is_timer(event: Event) -> bool:
    """Whether the umpire's timers put this event in the log: the agenda's, or a deadline's."""
    return event.type == CLOCK_ELAPSED or event.source.startswith(_AGENDA_SOURCES)


# What puts entries due at the same instant in order. It is a function of the entry
# (when it was scheduled, by what, which one), never of how many were pushed before
# it: a resumed or forked agenda pushes its entries in another sequence than the run
# that wrote the log, and an insertion counter then put a generator's next case
# before another generator's first where the run had it after (four-rivers-season,
# forked at 16..30). Entries scheduled earlier come first; at the same time, the
# scenario's own (0) before a generator's next case (1, scheduled as the previous
# one went out, in the order those went out) before a condition's inject (2,
# scheduled on a committed event, in the log's order of those events) before the
# controller's (3): the order in which a run schedules them. Then the order in which
# the scenario lists them.
_SCENARIO, _NEXT_CASE, _CONDITION, _CONTROLLER = range(4)


@dataclass(order=True)
class _Entry:
    at: datetime
    scheduled: datetime
    by: int
    # For a generator's next case: how many of the agenda's messages had gone out with
    # the case before it; for a condition's inject: how many events the agenda had
    # seen when it held. Both follow from the log alone.
    cause: int
    rank: int
    item: Any = field(compare=False)


class ScenarioAgenda:
    def __init__(
        self, scenario: Scenario, rng: random.Random, *, signatories: Signatories | None = None
    ) -> None:
        self.scenario = scenario
        # One draw from the run's seeded source names every stream of the agenda.
        self._seed = rng.getrandbits(64)
        self._streams: dict[str, random.Random] = {}
        # The cases as the log has them, event by event, for conditions on their state.
        self._cases: dict[str, Case] = {}
        self.parties: dict[str, Party] = {p.id: p for p in scenario.parties}
        # Injects are sent as their sender would have sent them: signed with its keys.
        self.signatories = signatories or Signatories.training(scenario.exercise, scenario.parties)
        self._heap: list[_Entry] = []
        # Each inject's and generator's place in the scenario, injects first: the last
        # tie-break.
        listed = [("inject", i.id) for i in scenario.injects]
        listed += [("generator", g.id) for g in scenario.generators]
        self._rank = {key: n for n, key in enumerate(listed)}
        self._waiting: list[Inject] = []
        self._observed = 0
        self._sent = 0
        # A resumed log that ends among the umpire's timers of its last instant: that
        # instant, and the place in the log where those timers began (`rest_of_instant`).
        self._cut: tuple[datetime, int] | None = None
        self._fired: set[str] = set()
        self._seen_messages: set[tuple[str, str]] = set()
        self._seen_rules: set[tuple[str, str]] = set()
        for inject in scenario.injects:
            if inject.at is not None:
                self._push(scenario.start + inject.at, ("inject", inject), scenario.start)
            else:
                self._waiting.append(inject)
        for generator in scenario.generators:
            self._push(
                scenario.start + generator.start, ("generator", generator, 1), scenario.start
            )

    def _stream(self, kind: str, name: str) -> random.Random:
        """The seeded stream of one generator or one conditioned inject."""
        key = f"{kind}/{name}"
        stream = self._streams.get(key)
        if stream is None:
            # A str seed is hashed with SHA-512: the same on every machine and run.
            stream = self._streams[key] = random.Random(f"{self._seed}/{key}")
        return stream

    def _push(
        self,
        at: datetime,
        item: tuple[Any, ...],
        scheduled: datetime,
        by: int = _SCENARIO,
        cause: int = 0,
    ) -> None:
        rank = self._rank[(item[0], item[1].id)]
        heapq.heappush(self._heap, _Entry(at, scheduled, by, cause, rank, item))

    def next_time(self) -> datetime | None:
        # An inject the controller sent early leaves its scheduled entry behind: spent,
        # it is no timer (a realtime run would wait for it, a jump would land on it).
        while self._heap and self._heap[0].item[0] == "inject":
            if self._heap[0].item[1].id not in self._fired:
                break
            heapq.heappop(self._heap)
        return self._heap[0].at if self._heap else None

    def due(self, at: datetime) -> list[tuple[Message, str]]:
        out = []
        while self._heap and self._heap[0].at <= at:
            entry = heapq.heappop(self._heap)
            if entry.item[0] == "inject":
                inject: Inject = entry.item[1]
                if inject.id in self._fired:
                    continue
                self._fired.add(inject.id)
                out.append((self._inject_message(inject), inject_source(inject.id)))
                self._sent += 1
            else:
                generator: Generator = entry.item[1]
                number: int = entry.item[2]
                out.append(self._generated(generator, number))
                self._sent += 1
                if number < generator.count:
                    self._push(
                        entry.at + self._interval(generator),
                        ("generator", generator, number + 1),
                        entry.at,
                        _NEXT_CASE,
                        self._sent,
                    )
        return out

    def _message(
        self,
        template: MessageTemplate,
        *,
        message_id: str,
        case_id: str,
        sender: str,
        recipient: str,
        tampered: Tamper | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Message:
        data = draft(
            template.type,
            message_id=message_id,
            case_id=case_id,
            sender=self.parties[sender],
            recipient=self.parties[recipient],
            fields=dict(template.fields) if fields is None else fields,
        )
        if tampered is not None:
            data = tamper(self.signatories, data, tampered)
        else:
            data = self.signatories.sign(data)
        try:
            return parse_message(data)
        except ValueError as exc:
            raise ScenarioError(
                f"scenario {self.scenario.exercise}", f"{message_id}: the message is invalid: {exc}"
            ) from None

    def _inject_message(self, inject: Inject) -> Message:
        send = inject.send
        return self._message(
            send,
            message_id=inject_message_id(inject.id),
            case_id=send.case,
            sender=send.sender,
            recipient=send.recipient,
            tampered=inject.tamper,
            # With what the runtime fills in: a written confirmation's `confirms`.
            fields=self.scenario.inject_fields(inject),
        )

    def _generated(self, generator: Generator, number: int) -> tuple[Message, str]:
        senders, recipients = generator.senders, generator.recipients
        sender = senders[(number - 1) % len(senders)]
        recipient = recipients[(number - 1) % len(recipients)]
        if recipient == sender:
            recipient = recipients[number % len(recipients)]
        message = self._message(
            generator.send,
            message_id=f"gen.{generator.id}.{number}",
            case_id=generated_case(generator.id, number),
            sender=sender,
            recipient=recipient,
        )
        return message, generator_source(generator.id, number)

    def _interval(self, generator: Generator) -> timedelta:
        return generator.every.sample(self._stream("generator", generator.id))

    def observe(self, events: Sequence[Event | NewEvent], sequencer: Sequencer) -> None:
        """Committed events, one by one: a condition that holds after one schedules its inject."""
        for event in events:
            self._observed += 1
            fold_committed(self._cases, event, sequencer.agreement)
            if is_message_event(event.type) and event.subject:
                kind = event.type.removeprefix("coop.msg.")
                case = self._cases.get(event.subject)
                # A message into a case from (or to) a party outside it is not one of the
                # case's messages: it left the case as it was, and no condition waits on it.
                if (
                    case is None
                    or outsider(case, event.sender or "", event.recipient or "", kind) is None
                ):
                    self._seen_messages.add((event.subject, kind))
            for violation in read_violations(event) or ():
                self._seen_rules.add((violation.rule_id, violation.case_id))
            if not self._waiting:
                continue
            for inject in list(self._waiting):
                if self._holds(inject):
                    self._waiting.remove(inject)
                    delay = inject.after.sample(self._stream("inject", inject.id))
                    self._push(
                        event.time + delay,
                        ("inject", inject),
                        event.time,
                        _CONDITION,
                        self._observed,
                    )

    def _holds(self, inject: Inject) -> bool:
        condition = inject.when
        if isinstance(condition, CaseStateCondition):
            case = self._cases.get(condition.case)
            return case is not None and case.state is condition.state
        if isinstance(condition, MessageCondition):
            return (condition.case, condition.message) in self._seen_messages
        if isinstance(condition, RuleCondition):
            return any(
                rule == condition.rule and (condition.case is None or case == condition.case)
                for rule, case in self._seen_rules
            )
        return False

    def resume(self, prefix: Sequence[Event], sequencer: Sequencer) -> None:
        """Go on from a log's first events as the run that wrote them went on (a fork).

        Generators draw the delays of the cases the log holds from their own
        streams, as they did then; conditions are judged again event by event.
        What is in the log does not fire again.
        """
        sources = {e.source for e in prefix}
        # The agenda's messages in the log, in the order they went out.
        sent = {
            source: n
            for n, source in enumerate(
                (e.source for e in prefix if e.source.startswith(_AGENDA_SOURCES)), 1
            )
        }
        self._fired |= {i.id for i in self.scenario.injects if inject_source(i.id) in sources}
        entries, self._heap = self._heap, []
        for entry in sorted(entries):
            item = entry.item
            at = entry.at
            if item[0] == "inject" and item[1].id in self._fired:
                continue
            scheduled, by, cause = entry.scheduled, entry.by, entry.cause
            while item[0] == "generator" and generator_source(item[1].id, item[2]) in sources:
                generator: Generator = item[1]
                if item[2] >= generator.count:
                    item = None
                    break
                # Scheduled as the run scheduled it: when the case before it was due.
                scheduled, by, cause = at, _NEXT_CASE, sent[generator_source(generator.id, item[2])]
                at = at + self._interval(generator)
                item = ("generator", generator, item[2] + 1)
            if item is not None:
                self._push(at, item, scheduled, by, cause)
        self._sent = len(sent)
        # Conditions that held in the log are scheduled as they were then; those whose
        # inject is in the log already are spent (`_fired`) and never fire.
        self.observe(prefix, sequencer)
        self._waiting = [i for i in self._waiting if i.id not in self._fired]
        began = len(prefix)
        while began and _is_timer(prefix[began - 1]) and prefix[began - 1].time == prefix[-1].time:
            began -= 1
        if began < len(prefix):
            self._cut = (prefix[-1].time, began + 1)

    def rest_of_instant(self, at: datetime) -> list[tuple[Message, str]] | None:
        """After `resume`: the rest of the timers of the instant the log ends at, or None.

        A run takes everything due at an instant together (`due`), appends it with
        the deadlines that passed then, and only then do the parties act at that
        instant. A log cut among those (a fork at any position) leaves the rest of
        them to go first, as the run had them; the driver asks for them before it
        asks the parties anything. Conditions' injects that the log's last timers
        made due were scheduled after the run took its timers: they stay for the
        next `due`, as they did. None: the log does not end among timers at `at`.
        """
        cut, self._cut = self._cut, None
        if cut is None or cut[0] != at:
            return None
        began = cut[1]
        entries, self._heap = self._heap, []
        later: list[_Entry] = []
        for entry in entries:
            made_due = entry.by == _CONDITION and entry.cause >= began
            (later if made_due else self._heap).append(entry)
        heapq.heapify(self._heap)
        rest = self.due(at)
        for entry in later:
            heapq.heappush(self._heap, entry)
        return rest

    def injects(self) -> list[str]:
        return [inject.id for inject in self.scenario.injects]

    def opens_case(self, case_id: str) -> bool:
        return self.scenario.creates_case(case_id)

    def fire_now(self, inject_id: str, at: datetime) -> bool:
        """The controller's "send this inject now"; False if unknown or already sent."""
        if inject_id in self._fired:
            return False
        for inject in self.scenario.injects:
            if inject.id == inject_id:
                if inject in self._waiting:
                    self._waiting.remove(inject)
                self._push(at, ("inject", inject), at, _CONTROLLER)
                return True
        return False
