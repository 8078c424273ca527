"""Building the report's data from a log: one fold into projections, then pure assembly.

`build_report(store)` reads; `assemble(...)` turns the projections into a
`ReportData` and touches nothing else, so what a report says is a function
of the log alone (STYLE 8: reports read projections, never live objects).
"""

import gc
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from simulator.eventlog import EventStore
from simulator.letters import LETTERS_DIRECTORY, letter_stem
from simulator.lineage import RESUMED_AT, read_lineage, resumed_positions, whole_number
from simulator.projections import (
    ControllerEntry,
    ControllerProjection,
    Finding,
    Milestones,
    MilestonesProjection,
    TimelineEntry,
    TimelineProjection,
    catch_up,
)
from simulator.projections.summary import score
from simulator.protocol import (
    DEFAULT_PROFILE_ID,
    RULES,
    Agreement,
    Case,
    CaseState,
    Severity,
)
from simulator.protocol.profile import default_profile, describe_window
from simulator.protocol.rules import IMPEDIMENT_NOT_PROMPT, RESULTS_OVERDUE, Rule
from simulator.records import CLOCK_ELAPSED
from simulator.report.facts import RunFacts
from simulator.report.formatting import article_key, article_label
from simulator.report.model import (
    NEVER_OPENED,
    AgreementTerms,
    Answer,
    ArticleGroup,
    CaseReport,
    CaseStep,
    CaseTimes,
    ControllerRow,
    ExerciseSummary,
    Expectations,
    ExpectationScore,
    FindingEntry,
    MeasureName,
    PartyInfo,
    PartyStats,
    RejectionEntry,
    ReportData,
    ResponseMeasure,
    ResponseTimes,
    RuleGroup,
    TimelineRow,
)
from simulator.scenario import Scenario
from simulator.wording import Sent, kind_words, prose, span, state_words

_RULE_ORDER = {rule.id: index for index, rule in enumerate(RULES)}


async def build_report(store: EventStore) -> ReportData:
    """Fold the whole log once and assemble the report from what the projections hold."""
    metadata = await store.metadata()
    marks = MilestonesProjection()
    timeline = TimelineProjection()
    facts = RunFacts()
    controller = ControllerProjection()
    with collector_paused():
        await catch_up(store, marks, timeline, facts, controller)
        return assemble(marks, timeline, facts, metadata, controller)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the block runs, back as it was after.

    Building a report only adds objects that live as long as it does, and each
    full collection scans them all again: for a load run's log (118k events)
    that was half the time of building its report. What the block frees it
    frees by reference counting; a cycle it leaves waits for the next collection.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_scenario(metadata: Mapping[str, str]) -> tuple[Scenario | None, str]:
    """The scenario a run stored in its log's metadata, or None and why it is not there."""
    raw = metadata.get("scenario")
    if raw is None:
        return None, "The log's metadata holds no scenario, so no expectations were scored."
    try:
        return Scenario.model_validate_json(raw), ""
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        return None, (
            "The scenario in the log's metadata could not be read "
            f"({exc.error_count()} problems; first at {where}: {first['msg']}), "
            "so no expectations were scored."
        )


def assemble(
    marks: MilestonesProjection,
    timeline: TimelineProjection,
    facts: RunFacts,
    metadata: Mapping[str, str],
    controller: ControllerProjection | None = None,
) -> ReportData:
    scenario, note = read_scenario(metadata)
    by_position: dict[int, list[Finding]] = defaultdict(list)
    for finding in marks.findings:
        by_position[finding.position].append(finding)
    rows = [_controller_row(e) for e in (controller.entries if controller else ())]
    messages = sent_messages(timeline.entries)
    # The timeline names the case a controller's note or action went with.
    desk_cases = {row.position: row.case for row in rows}
    cases = _cases(marks, timeline.entries, by_position, facts.last_time, rows)
    return ReportData(
        summary=_summary(marks, facts, metadata, scenario, cases, rows),
        cases=cases,
        response_times=_response_times(cases, marks.agreement),
        violations=_violations(marks.findings, timeline.entries, marks.agreement),
        expectations=_expectations(marks, scenario, note),
        parties=_parties(marks, timeline.entries, facts, cases),
        rejections=[
            RejectionEntry(
                position=r.position,
                time=r.time,
                party=r.party,
                message_id=r.message_id,
                reason=r.reason,
            )
            for r in facts.rejections
        ],
        controller=rows,
        timeline=[
            TimelineRow(
                position=entry.position,
                time=entry.time,
                case=entry.case_id or desk_cases.get(entry.position),
                type=entry.type,
                sender=entry.sender,
                recipient=entry.recipient,
                gist=entry.gist or prose(facts.notes.get(entry.position, ""), messages),
                findings=[f.violation.rule_id for f in by_position.get(entry.position, ())],
                message_id=entry.message_id,
                letter=letter_file(entry),
            )
            for entry in timeline.entries
        ],
    )


def letter_file(entry: TimelineEntry) -> str | None:
    """Where a written message's letter lies beside the report (`simulator.letters`)."""
    if entry.message_id is None or entry.case_id is None or entry.medium == "oral":
        return None
    return f"{LETTERS_DIRECTORY}/{letter_stem(entry.position, entry.case_id, entry.type)}.html"


def _controller_row(entry: ControllerEntry) -> ControllerRow:
    return ControllerRow(
        position=entry.position,
        time=entry.time,
        kind=entry.kind,
        command=entry.command,
        text=entry.text,
        answer=entry.answer,
        case=entry.case_id,
    )


def _seconds(delta: timedelta) -> int:
    return round(delta.total_seconds())


def _summary(
    marks: MilestonesProjection,
    facts: RunFacts,
    metadata: Mapping[str, str],
    scenario: Scenario | None,
    cases: Sequence[CaseReport],
    controller: Sequence[ControllerRow],
) -> ExerciseSummary:
    seed_text = metadata.get("seed")
    recorded = whole_number(seed_text) if seed_text is not None else None
    seed = recorded if recorded is not None else facts.seed
    agreement = marks.agreement
    states = Counter(c.state.value for c in marks.cases.values())
    severities = Counter(f.violation.severity.value for f in marks.findings)
    start, end = facts.first_time, facts.last_time
    return ExerciseSummary(
        exercise=(scenario.exercise if scenario else "")
        or metadata.get("exercise", "")
        or facts.exercise,
        title=scenario.title if scenario else facts.title or "",
        seed=seed,
        log_id=metadata.get("eventlog.log_id"),
        head_hash=facts.head_hash,
        simulated_start=start,
        simulated_end=end,
        simulated_seconds=_seconds(end - start) if start and end else 0,
        ended_because=facts.ended_because,
        events=marks.position,
        messages=facts.messages,
        deadline_events=facts.deadline_events,
        rejections=len(facts.rejections),
        violations=len(marks.findings),
        violations_by_severity={s.value: severities[s.value] for s in Severity},
        cases=len(marks.cases),
        cases_by_state=dict(sorted(states.items(), key=lambda kv: (-kv[1], kv[0]))),
        unopened_cases=[c.case_id for c in cases if c.state == NEVER_OPENED],
        divergences=[d.position for d in marks.divergences],
        parties=[PartyInfo(id=p.id, name=p.name) for p in agreement.parties.values()]
        if agreement
        else [],
        agreement=_terms(agreement) if agreement else None,
        lineage=read_lineage(metadata),
        resumed_at=resumed_positions(metadata.get(RESUMED_AT)),
        notes=sum(1 for row in controller if row.kind == "note"),
        controller_actions=sum(1 for row in controller if row.kind == "action"),
    )


def _cases(
    marks: MilestonesProjection,
    entries: Sequence[TimelineEntry],
    by_position: Mapping[int, Sequence[Finding]],
    log_end: datetime | None,
    controller: Sequence[ControllerRow],
) -> list[CaseReport]:
    """Every case id the log names, in the order its first event came."""
    steps: dict[str, list[CaseStep]] = {}
    for entry in entries:
        if entry.case_id is None:
            continue
        is_deadline = entry.type == CLOCK_ELAPSED
        if not is_deadline and entry.sender is None:
            continue
        steps.setdefault(entry.case_id, []).append(
            CaseStep(
                position=entry.position,
                time=entry.time,
                kind="deadline" if is_deadline else "message",
                type=entry.type,
                sender=entry.sender,
                recipient=entry.recipient,
                rule_ids=[f.violation.rule_id for f in by_position.get(entry.position, ())],
                message_id=entry.message_id,
                letter=letter_file(entry),
            )
        )
    violations = Counter(f.violation.case_id for f in marks.findings)
    noted: dict[str, list[ControllerRow]] = defaultdict(list)
    for row in controller:
        if row.case is not None:
            noted[row.case].append(row)
    reports = []
    for case_id, case_steps in steps.items():
        case = marks.cases.get(case_id)
        reports.append(
            CaseReport(
                case_id=case_id,
                state=case.state.value if case else NEVER_OPENED,
                requesting=case.requesting if case else None,
                requested=case.requested if case else None,
                offered_by=case.offered_by if case else None,
                offered_to=case.offered_to if case else None,
                area=case.area if case else None,
                lanes=_lanes(case, case_steps),
                opened_at=case.opened_at if case else None,
                last_at=case_steps[-1].time,
                violations=violations[case_id],
                steps=case_steps,
                times=_times(case, marks, case_steps, log_end),
                controller=noted.get(case_id, []),
            )
        )
    return reports


def _lanes(case: Case | None, steps: Iterable[CaseStep]) -> list[str]:
    """Requesting party left, requested right (offerer first for an offer), then the rest."""
    lanes: list[str] = []
    first = [case.requesting, case.requested] if case and case.requesting else []
    if case and not first:
        first = [case.offered_by, case.offered_to]
    for party in (*first, *(p for s in steps for p in (s.sender, s.recipient))):
        if party is not None and party not in lanes:
            lanes.append(party)
    return lanes


@dataclass(frozen=True, slots=True)
class _CaseLook:
    """What the answers of one case are judged from."""

    case: Case
    steps: Sequence[CaseStep]
    log_end: datetime | None

    @property
    def closed_note(self) -> str:
        state = self.case.state
        if state is CaseState.LAPSED:
            return "the case lapsed first"
        return f"the case was {state_words(state.value)} first"

    def waited(self, since: datetime) -> int | None:
        return _seconds(self.log_end - since) if self.log_end is not None else None

    def first(self, kind: str, sender: str | None) -> CaseStep | None:
        # Only the side that owes an answer gives it; one sent by the other side is not it.
        return next((s for s in self.steps if s.type == kind and s.sender == sender), None)

    def unanswered(self, since: datetime) -> Answer:
        """An answer that never came: not owed once the case closed, owed while it is open."""
        if self.case.state.terminal:
            return Answer(status="not_owed", after=None, note=self.closed_note)
        return Answer(status="owed", after=self.waited(since))


def _confirmation(look: _CaseLook, window: timedelta) -> Answer | None:
    """Art. 4.2 (here): the written confirmation of an oral request, within `window`."""
    oral = look.first("oral_request", look.case.requesting)
    if oral is None:
        return None
    # Every written confirmation counts, one sent after the case lapsed too: it came, late.
    written = look.first("written_confirmation", look.case.requesting)
    if written is not None:
        after = _seconds(written.time - oral.time)
        late = after > _seconds(window)
        return Answer(status="answered", after=after, late=late)
    if look.case.state is CaseState.LAPSED:
        return Answer(status="unanswered", after=None, note="the case lapsed")
    return look.unanswered(oral.time)


def _acknowledgement(look: _CaseLook, request_at: datetime) -> Answer:
    case = look.case
    acknowledged = look.first("acknowledgement", case.requested)
    if acknowledged is not None:
        return Answer(status="answered", after=_seconds(acknowledged.time - request_at))
    replied = next(
        (s for s in look.steps if s.kind == "message" and s.sender == case.requested), None
    )
    if replied is not None:
        # Any answer shows the request was received: no acknowledgement was owed.
        return Answer(
            status="not_owed", after=None, note=f"went straight to {kind_words(replied.type)}"
        )
    return look.unanswered(request_at)


_OUTCOMES: tuple[tuple[CaseState, Literal["executed", "refused"]], ...] = (
    (CaseState.IN_EXECUTION, "executed"),
    (CaseState.REFUSED, "refused"),
)


def _decision(
    look: _CaseLook, milestones: Milestones, request_at: datetime
) -> tuple[Answer, Literal["executed", "refused"] | None]:
    """From the request to acceptance (execution, a partial refusal too) or full refusal."""
    reached = milestones.states
    decisions = sorted(
        (at, name) for state, name in _OUTCOMES if (at := reached.get(state.value)) is not None
    )
    if decisions:
        at, kind = decisions[0]
        return Answer(status="answered", after=_seconds(at - request_at)), kind
    return look.unanswered(request_at), None


def _results(look: _CaseLook, asap: timedelta | None) -> Answer | None:
    """Art. 6.4 counts from the start of execution, as the umpire does."""
    case = look.case
    started = case.execution_started_at
    if started is None:
        return None
    limit = _seconds(asap) if asap is not None else None
    if case.results_at is not None:
        after = _seconds(case.results_at - started)
        return Answer(status="answered", after=after, late=limit is not None and after > limit)
    answer = look.unanswered(started)
    if answer.status == "owed" and answer.after is not None and limit is not None:
        return answer.model_copy(update={"late": answer.after > limit})
    return answer


def _times(
    case: Case | None,
    marks: MilestonesProjection,
    steps: Sequence[CaseStep],
    log_end: datetime | None,
) -> CaseTimes:
    milestones = marks.milestones.get(case.case_id) if case else None
    if case is None or milestones is None:
        return CaseTimes(
            request_at=None,
            written_confirmation=None,
            acknowledgement=None,
            decision=None,
            decision_kind=None,
            execution_started_at=None,
            results=None,
        )
    look = _CaseLook(case, steps, log_end)
    sent = milestones.messages
    requested_at = [sent[k] for k in ("written_request", "oral_request") if k in sent]
    request_at = min(requested_at) if requested_at else None
    decision, decision_kind = (
        _decision(look, milestones, request_at) if request_at is not None else (None, None)
    )
    # Each case under its own agreement: its window for the written confirmation, its
    # "as soon as possible" (several agreements in one exercise may differ in both).
    under = marks.agreement.under(case.agreement) if marks.agreement else None
    asap = under.settings.as_soon_as_possible if under else None
    profile = under.profile if under else default_profile()
    return CaseTimes(
        request_at=request_at,
        written_confirmation=_confirmation(look, profile.deadlines.written_confirmation),
        acknowledgement=_acknowledgement(look, request_at) if request_at is not None else None,
        decision=decision,
        decision_kind=decision_kind,
        execution_started_at=case.execution_started_at,
        results=_results(look, asap),
    )


def _measure(
    name: MeasureName,
    label: str,
    counted_from: str,
    answers: Sequence[tuple[str, Answer | None]],
    reference: timedelta | None,
    reference_label: str | None,
) -> ResponseMeasure:
    """Aggregate each case's answer of one kind: only answers that came are samples."""
    given = [(case, a) for case, a in answers if a is not None]
    answered = [
        (case, a.after) for case, a in given if a.status == "answered" and a.after is not None
    ]
    seconds = [s for _, s in answered]
    limit = _seconds(reference) if reference is not None else None
    return ResponseMeasure(
        name=name,
        label=label,
        counted_from=counted_from,
        reference_seconds=limit,
        reference_label=reference_label,
        samples=len(seconds),
        median_seconds=round(statistics.median(seconds)) if seconds else None,
        max_seconds=max(seconds) if seconds else None,
        # Each answer knows whether it was late by its own case's agreement (Art. 4.2 of the
        # default: "no more than 3 days later", the due instant itself in time).
        over_reference=[case for case, a in given if a.status == "answered" and a.late],
        owed=[case for case, a in given if a.status == "owed"],
        unanswered=[case for case, a in given if a.status == "unanswered"],
        not_owed=[case for case, a in given if a.status == "not_owed"],
    )


def _terms(agreement: Agreement) -> AgreementTerms:
    profile = agreement.profile
    terms = AgreementTerms(
        promptly_seconds=_seconds(agreement.settings.promptly),
        as_soon_as_possible_seconds=_seconds(agreement.settings.as_soon_as_possible),
        written_confirmation_seconds=_seconds(profile.deadlines.written_confirmation),
        working_language=agreement.settings.working_language,
    )
    if profile.id == DEFAULT_PROFILE_ID:
        return terms
    return terms.model_copy(
        update={
            "profile": profile.id,
            "title": profile.short_title,
            "promptly_article": profile.article(IMPEDIMENT_NOT_PROMPT),
            "as_soon_as_possible_article": profile.article(RESULTS_OVERDUE),
            "written_confirmation_article": profile.deadlines.written_confirmation_article,
            "working_language_article": profile.languages_article,
        }
    )


def _each_agreement(agreement: Agreement | None) -> list[Agreement]:
    """The agreements cases of the exercise are under: its bindings', or its one.

    A log that records none (written before agreements were recorded) is read under the
    default agreement.
    """
    if agreement is None:
        return [Agreement.of((), profile=default_profile())]
    if not agreement.bindings:
        return [agreement]
    return [agreement.under(b.id) for b in agreement.bindings]


def _references(labels: Sequence[str]) -> str:
    """One reference, or each agreement's where they differ."""
    return "; ".join(dict.fromkeys(labels))


def _response_times(cases: Sequence[CaseReport], agreement: Agreement | None) -> ResponseTimes:
    asap = agreement.settings.as_soon_as_possible if agreement else None
    views = _each_agreement(agreement)
    window = views[0].profile.deadlines.written_confirmation
    several = len({(v.profile.id, v.settings) for v in views}) > 1
    window_label = _references(
        [
            f"Art. {v.profile.deadlines.written_confirmation_article}"
            f"{f' ({v.profile.short_title})' if several else ''}: "
            f"{describe_window(v.profile.deadlines.written_confirmation)}"
            for v in views
        ]
    )
    asap_label = (
        _references(
            [
                f"Art. {v.profile.article(RESULTS_OVERDUE)}"
                f"{f' ({v.profile.short_title})' if several else ''} as soon as possible: "
                f"{span(v.settings.as_soon_as_possible.total_seconds())}"
                for v in views
            ]
        )
        if asap
        else None
    )
    return ResponseTimes(
        measures=[
            _measure(
                "written_confirmation",
                "Written confirmation",
                "oral request",
                [(c.case_id, c.times.written_confirmation) for c in cases],
                window,
                window_label,
            ),
            _measure(
                "acknowledgement",
                "Acknowledgement",
                "request",
                [(c.case_id, c.times.acknowledgement) for c in cases],
                None,
                None,
            ),
            _measure(
                "decision",
                "Decision (execution or refusal)",
                "request",
                [(c.case_id, c.times.decision) for c in cases],
                None,
                None,
            ),
            _measure(
                "results",
                "Results",
                "start of execution",
                [(c.case_id, c.times.results) for c in cases],
                asap,
                asap_label,
            ),
        ]
    )


def sent_messages(entries: Sequence[TimelineEntry]) -> dict[str, Sent]:
    """Each message id of the log with its type and time, so sentences can name messages."""
    return {
        entry.message_id: Sent(entry.type, entry.time)
        for entry in entries
        if entry.message_id is not None
    }


def _violations(
    findings: Sequence[Finding], entries: Sequence[TimelineEntry], agreement: Agreement | None
) -> list[ArticleGroup]:
    kinds = {entry.position: entry.type for entry in entries}
    messages = sent_messages(entries)
    # Each rule in the words of the agreement the finding was umpired under: with several
    # agreements, the one whose article for the rule is the finding's (the first if two agree).
    views = _each_agreement(agreement)
    book: dict[tuple[str, str], Rule] = {}
    first: dict[str, Rule] = {}
    for view in views:
        for rule in view.profile.rule_book():
            book.setdefault((rule.id, rule.article), rule)
            first.setdefault(rule.id, rule)

    def summary(rule_id: str, article: str) -> str:
        # A log umpired before a profile's article changed still gets the rule's words.
        rule = book.get((rule_id, article)) or first.get(rule_id)
        return rule.summary if rule else ""

    grouped: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for finding in findings:
        grouped[finding.violation.article][finding.violation.rule_id].append(finding)
    groups = []
    for article in sorted(grouped, key=article_key):
        rules = grouped[article]
        groups.append(
            ArticleGroup(
                article=article,
                label=article_label(article),
                count=sum(len(found) for found in rules.values()),
                rules=[
                    RuleGroup(
                        rule_id=rule_id,
                        severity=rules[rule_id][0].violation.severity.value,
                        summary=summary(rule_id, article),
                        findings=[
                            FindingEntry(
                                position=f.position,
                                time=f.time,
                                event_type=kinds.get(f.position, ""),
                                case=f.violation.case_id,
                                party=f.violation.party,
                                message_id=f.violation.message_id,
                                detail=f.violation.detail,
                                what=prose(f.violation.detail, messages),
                            )
                            for f in rules[rule_id]
                        ],
                    )
                    for rule_id in sorted(rules, key=lambda r: (_RULE_ORDER.get(r, len(RULES)), r))
                ],
            )
        )
    return groups


def _expectations(
    marks: MilestonesProjection, scenario: Scenario | None, note: str
) -> Expectations:
    if scenario is None:
        return Expectations(scored=False, note=note, results=[])
    results = []
    for expectation in scenario.expectations:
        scored = score(expectation, marks)
        target = (
            f"message {expectation.message}"
            if expectation.message is not None
            else f"state {expectation.state.value if expectation.state else ''}"
        )
        results.append(
            ExpectationScore(
                id=scored.id,
                description=scored.description,
                case=expectation.case,
                target=target,
                within_seconds=_seconds(expectation.within) if expectation.within else None,
                met=scored.met,
                missed=scored.missed,
            )
        )
    note = "" if results else "The scenario sets no expectations."
    return Expectations(scored=True, note=note, results=results)


def _parties(
    marks: MilestonesProjection,
    entries: Sequence[TimelineEntry],
    facts: RunFacts,
    cases: Sequence[CaseReport],
) -> list[PartyStats]:
    names = {p.id: p.name for p in marks.agreement.parties.values()} if marks.agreement else {}
    sent: Counter[str] = Counter()
    received: Counter[str] = Counter()
    for entry in entries:
        # Only message events have a sender.
        if entry.sender is not None:
            sent[entry.sender] += 1
            if entry.recipient is not None:
                received[entry.recipient] += 1
    gaps: dict[str, list[int]] = defaultdict(list)
    for case in cases:
        previous: CaseStep | None = None
        for step in case.steps:
            if step.kind != "message":
                continue
            if (
                previous is not None
                and step.sender is not None
                and previous.recipient == step.sender
            ):
                gaps[step.sender].append(_seconds(step.time - previous.time))
            previous = step
    caused = Counter(f.violation.party for f in marks.findings if f.violation.party)
    rejected = Counter(r.party for r in facts.rejections if r.party)
    requesting = Counter(c.requesting for c in marks.cases.values() if c.requesting)
    requested = Counter(c.requested for c in marks.cases.values() if c.requested)
    # Parties of the agreement first, in its order; anyone else who turned up, after.
    others = sorted({*sent, *received, *caused, *rejected} - set(names))
    return [
        PartyStats(
            party=party,
            name=names.get(party, ""),
            sent=sent[party],
            received=received[party],
            cases_requesting=requesting[party],
            cases_requested=requested[party],
            violations_caused=caused[party],
            rejections=rejected[party],
            responses=len(gaps[party]),
            median_response_seconds=round(statistics.median(gaps[party])) if gaps[party] else None,
        )
        for party in [*names, *others]
    ]
