"""Long random sequences of valid and invalid messages through the fold (hypothesis).

The oracle here is an independent transcription of PROTOCOL.md's state
diagram: for each state, which message types are allowed, from which role,
and where they lead, plus what runs alongside the states (an oral request's
written confirmation, Art. 4.2; a question's answer, Art. 6.2). The fold
must agree with it on every step.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from simulator.protocol import (
    MESSAGE_TYPES,
    Case,
    CaseState,
    Message,
    Violation,
    apply,
    deadlines,
    elapse,
)
from tests.protocol.builders import AGREEMENT, SETTINGS, T0, build

R, D = "requesting", "requested"
ART_7 = {
    "transfer_consent_request": (R, "="),
    "transfer_consent": (D, "="),
    "results_transfer": ("third", "="),
}
# Art. 6.2 and 6.3 from receipt on: the answer resumes the case where it was.
ASK = {
    "information_request": (D, "awaiting_information"),
    "confidentiality_impossible": (D, "awaiting_decision"),
}
# Art. 6.1 "promptly": an impediment may be notified from receipt on, in every open state.
IMPEDIMENT = {"impediment_notice": (D, "=")}
CONSIDER = {
    **IMPEDIMENT,
    "confirmation_request": (D, "awaiting_confirmation"),
    "consultation": (D, "in_consultation"),
    "acceptance": (D, "in_execution"),
    "refusal": (D, "<refusal>"),
    "withdrawal": (R, "withdrawn"),
    **ASK,
}
WAITS = {"awaiting_confirmation", "awaiting_information", "awaiting_decision"}
# Art. 6.4: once executing, the results clock stands still while the case waits on the
# requesting party: in the waits, and for its answer to conditions proposed (Art. 5.2).
PAUSES = WAITS | {"in_consultation"}
DIAGRAM: dict[str | None, dict[str, tuple[str, str]]] = {
    None: {
        "written_request": ("any", "received"),
        "oral_request": ("any", "received"),
        "offer": ("any", "offered"),
    },
    "offered": {
        "written_request": ("offeree", "received"),
        "oral_request": ("offeree", "received"),
        "offer_declined": ("offeree", "declined"),
        "withdrawal": ("offerer", "withdrawn"),
    },
    "received": {"acknowledgement": (D, "under_consideration"), **CONSIDER},
    "under_consideration": CONSIDER,
    "awaiting_confirmation": {
        "additional_confirmation": (R, "<resume>"),
        "withdrawal": (R, "withdrawn"),
        **IMPEDIMENT,
    },
    "in_consultation": {
        **IMPEDIMENT,
        # Consulted in execution, the answer resumes it whatever it is; consulted
        # before, rejected conditions leave the request under consideration.
        "conditions_accepted": (R, "in_execution"),
        "conditions_rejected": (R, "<rejected>"),
        "withdrawal": (R, "withdrawn"),
    },
    "in_execution": {
        # Art. 4.2: a doubt may arise at any stage (the writing of an oral request may
        # first be read in execution); the answer resumes execution.
        "confirmation_request": (D, "awaiting_confirmation"),
        # Art. 5.2: consulted "pending a decision to refuse", in part too.
        "consultation": (D, "in_consultation"),
        "impediment_notice": (D, "="),
        # Partial only (Art. 5.1 "in part"): the rest stays in execution.
        "refusal": (D, "<refusal>"),
        "results": (D, "completed"),
        "withdrawal": (R, "withdrawn"),
        **ASK,
        **ART_7,
    },
    "awaiting_information": {
        "additional_information": (R, "<resume>"),
        "impediment_notice": (D, "="),
        "withdrawal": (R, "withdrawn"),
        **ART_7,
    },
    "awaiting_decision": {
        "confidentiality_decision": (R, "<resume-or-withdrawn>"),
        "impediment_notice": (D, "="),
        "withdrawal": (R, "withdrawn"),
        **ART_7,
    },
    "completed": ART_7,
    "refused": {},
    "withdrawn": {},
    "declined": {},
    "lapsed": {},
}
TERMINAL = {"completed", "refused", "withdrawn", "declined", "lapsed"}
PARTY_IDS = ["alpha", "beta", "gamma"]
DEFECTS: dict[str, list[dict[str, Any]]] = {
    # An area of another agreement's (customs-maa) is outside the default's Art. 2; a
    # request or offer naming an agreement the exercise does not have is outside its scope
    # (Art. 1), a request accepting an offer included (the offer's agreement governs it).
    "written_request": [
        {"essence": ""},
        {"signature": None},
        {"seal": "FAKE-SEAL"},
        {"area": "customs_offences"},
        {"agreement": "customs-maa"},
    ],
    "written_confirmation": [{"purpose": ""}, {"signature": {"name": "Nobody"}}],
    "oral_request": [{"urgent": False}, {"area": "customs_legislation"}],
    "offer": [{"agreement": "no-such-agreement"}],
    "refusal": [
        {"reasons": ""},
        {"medium": "oral"},
        {"grounds": ["budget"]},
        # Several grounds, one of them outside Art. 5.1: the one outside is the breach.
        {"grounds": ["security", "budget", "public_order"]},
        {"grounds": []},
        {"scope": "partial", "refused_parts": []},
    ],
}
# Art. 5.1 lists six grounds; a refusal may rest on several of them at once.
GROUNDS = [
    "sovereignty",
    "security",
    "public_order",
    "essential_interests",
    "contradicts_national_law",
    "contradicts_international_obligations",
]


@dataclass
class Expect:
    """The oracle's own view of one case."""

    state: str | None = None
    requesting: str | None = None
    requested: str | None = None
    offerer: str | None = None
    offeree: str | None = None
    resume: str | None = None
    rejected: bool = False
    consulted: bool = False
    results: bool = False
    consents: set[str] = field(default_factory=set)
    oral_id: str | None = None
    oral_at: Any = None
    # The written confirmation of an oral request: None, "owed", "given", "overdue".
    confirmation: str | None = None
    # A question from the requested party (in turn or not) not yet answered.
    question: bool = False
    first_terminal: str | None = None
    # Art. 6.4: when execution began, and whether its lateness was reported (once).
    started_at: Any = None
    overdue_reported: bool = False
    # Art. 6.1: when the request came; "promptly" runs from no earlier.
    requested_at: Any = None
    # Art. 6.4: "as soon as possible" stands still while execution waits on the
    # requesting party: since when it waits, and how long it waited before.
    paused_at: Any = None
    waited: timedelta = timedelta(0)

    def allowed(self) -> dict[str, tuple[str, str]]:
        """The diagram's messages in this state, and what runs alongside the states."""
        allowed = dict(DIAGRAM[self.state])
        # Art. 4.2: the confirmation is owed whatever became of the request; in a lapsed
        # case its lateness is the lapse's one finding (the fold's `_CONFIRMABLE_CLOSED`).
        confirmable = self.state not in TERMINAL or self.state in ("completed", "refused", "lapsed")
        if self.confirmation in ("owed", "overdue") and confirmable:
            allowed["written_confirmation"] = (R, "=")
        if self.question and "additional_information" not in allowed:
            allowed["additional_information"] = (R, "=")
        return allowed

    def third(self) -> str:
        return next(p for p in PARTY_IDS if p not in (self.requesting, self.requested))

    def pair(self, role: str) -> tuple[str | None, str | None]:
        return {
            R: (self.requesting, self.requested),
            D: (self.requested, self.requesting),
            "offeree": (self.offeree, self.offerer),
            "offerer": (self.offerer, self.offeree),
            "third": (self.requesting, self.third() if self.requesting else None),
        }[role]


class ProcedureMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cases: dict[str, Case | None] = {}
        self.expect: dict[str, Expect] = {}
        self.history: list[tuple[str, Message | None, Any]] = []
        self.all_violations: list[Violation] = []
        self.at = T0
        self.counter = 0

    @initialize()
    def open_books(self) -> None:
        for case_id in ("case-a", "case-b"):
            self.cases[case_id] = None
            self.expect[case_id] = Expect()

    @rule(hours=st.integers(min_value=0, max_value=120))
    def time_passes(self, hours: int) -> None:
        self._elapse_to(self.at + timedelta(hours=hours))

    @rule(data=st.data())
    def until_a_deadline(self, data: st.DataObject) -> None:
        """Time runs to a deadline's very instant (in time: Art. 4.2 "no more than 3
        days"), or a microsecond past it (late)."""
        due = sorted(
            d.due_at
            for case in self.cases.values()
            if case is not None
            for d in deadlines(case, SETTINGS)
        )
        if not due:
            return
        moment = data.draw(st.sampled_from(due))
        past = data.draw(st.sampled_from([timedelta(0), timedelta(microseconds=1)]))
        self._elapse_to(max(self.at, moment + past))

    def _elapse_to(self, at: Any) -> None:
        self.at = at
        for case_id, current in self.cases.items():
            exp = self.expect[case_id]
            if current is None:
                continue
            before = current.state
            case, found = elapse(current, self.at, AGREEMENT)
            self.cases[case_id] = case
            self.all_violations.extend(found)
            self.history.append((case_id, None, self.at))
            overdue = (
                exp.confirmation == "owed"
                and exp.state != "withdrawn"
                and self.at > exp.oral_at + timedelta(days=3)
            )
            if overdue:
                # Art. 4.2 runs alongside: reported whatever the stage; an open case lapses.
                exp.confirmation = "overdue"
                if exp.state not in TERMINAL:
                    exp.state = exp.first_terminal = "lapsed"
                assert "oral-request-not-confirmed" in [v.rule_id for v in found]
            else:
                assert "oral-request-not-confirmed" not in [v.rule_id for v in found]
            # Art. 6.4: execution past "as soon as possible" without results, said once.
            late = (
                exp.started_at is not None
                and not exp.results
                and not exp.overdue_reported
                and exp.state not in TERMINAL
                and exp.paused_at is None
                and self.at > exp.started_at + SETTINGS.as_soon_as_possible + exp.waited
            )
            if late:
                exp.overdue_reported = True
            assert ("results-overdue" in [v.rule_id for v in found]) == late
            assert case.state.value == exp.state
            if before.terminal:
                assert case.state is before

    @rule(data=st.data())
    def send(self, data: st.DataObject) -> None:
        case_id = data.draw(st.sampled_from(sorted(self.cases)))
        exp = self.expect[case_id]
        allowed = exp.allowed()
        follow = bool(allowed) and data.draw(st.integers(0, 3)) > 0
        sender: str | None
        recipient: str | None
        if follow:
            kind = data.draw(st.sampled_from(sorted(allowed)))
            role = allowed[kind][0]
            if role == "any":
                sender = data.draw(st.sampled_from(PARTY_IDS))
                recipient = data.draw(st.sampled_from([p for p in PARTY_IDS if p != sender]))
            else:
                sender, recipient = exp.pair(role)
        else:
            kind = data.draw(st.sampled_from(sorted(MESSAGE_TYPES)))
            sender = data.draw(st.sampled_from([*PARTY_IDS, "zeta"]))
            recipient = data.draw(st.sampled_from([p for p in PARTY_IDS if p != sender]))
        assert sender is not None
        assert recipient is not None

        overrides: dict[str, Any] = {}
        content_defect = False
        if data.draw(st.integers(0, 4)) == 0:
            choices = [*DEFECTS.get(kind, []), {"language": "en"}]
            overrides = dict(data.draw(st.sampled_from(choices)))
            content_defect = True
        if kind == "written_confirmation":
            overrides["confirms"] = (
                exp.oral_id if follow and exp.oral_id else data.draw(st.sampled_from(["m-x", "m1"]))
            )
        if kind in ("transfer_consent_request", "transfer_consent"):
            overrides["third_party"] = exp.third() if exp.requesting else "gamma"
        if kind == "transfer_consent":
            overrides["granted"] = data.draw(st.booleans())
        if kind == "confidentiality_decision":
            overrides["proceed"] = data.draw(st.booleans())
        if kind == "refusal" and "scope" not in overrides and data.draw(st.booleans()):
            overrides.update(scope="partial", refused_parts=["patrol schedules"])
        if kind == "refusal" and "grounds" not in overrides:
            overrides["grounds"] = data.draw(
                st.lists(st.sampled_from(GROUNDS), min_size=1, max_size=3)
            )
        if kind == "impediment_notice" and "occurred_at" not in overrides:
            # Art. 6.1 "promptly": notified exactly at the limit is in time; a second
            # later is not (a content defect: impediment-not-prompt).
            # Circumstances older than the request count from its receipt.
            late = data.draw(st.integers(0, 3))
            if late < 2:
                arose = self.at - SETTINGS.promptly - timedelta(seconds=late)
                overrides["occurred_at"] = arose.isoformat()
                came = exp.requested_at
                content_defect = content_defect or (late == 1 and (came is None or arose >= came))

        self.counter += 1
        message = build(
            kind,
            case_id=case_id,
            message_id=f"m{self.counter}",
            sender=sender,
            recipient=recipient,
            **overrides,
        )
        self._check_step(case_id, exp, message, content_defect)

    def _check_step(self, case_id: str, exp: Expect, message: Message, defect: bool) -> None:
        kind = message.type
        before = self.cases[case_id]
        entry = exp.allowed().get(kind)
        structural = entry is not None and (
            entry[0] == "any"
            or (
                (message.sender, message.recipient) == exp.pair(entry[0])
                and message.sender in PARTY_IDS
            )
        )
        if message.sender not in PARTY_IDS:
            structural = False
        if structural and kind == "written_confirmation":
            structural = getattr(message, "confirms", None) == exp.oral_id
        if structural and exp.rejected and exp.state == "under_consideration":
            structural = kind not in ("acceptance",)
        if structural and kind == "refusal" and exp.state == "in_execution":
            structural = getattr(message, "scope") == "partial"  # noqa: B009
        if structural and kind == "results_transfer":
            structural = exp.results
        needs_consent = (
            structural and kind == "results_transfer" and message.recipient not in exp.consents
        )

        case, found = apply(before, message, self.at, AGREEMENT)
        self.cases[case_id] = case
        self.all_violations.extend(found)
        self.history.append((case_id, message, self.at))
        ids = [v.rule_id for v in found]

        if not structural or defect or needs_consent:
            assert found, f"invalid {kind} in {exp.state} yielded no violation"
        asked = kind == "information_request" and (
            exp.requested is not None and (message.sender, message.recipient) == exp.pair(D)
        )
        if not structural:
            after_state = case.state.value if case is not None else None
            assert after_state == exp.state, f"{kind} in {exp.state} moved to {after_state}"
            # Asked out of turn, a question still waits for its answer (Art. 6.2).
            exp.question = exp.question or asked
            return
        if not defect and not needs_consent:
            tolerated = {"refusal-without-consultation"} if not exp.consulted else set()
            assert set(ids) <= tolerated, f"valid {kind} in {exp.state} gave {ids}"
        self._advance(exp, message, entry[1] if entry else "=")
        assert case is not None
        assert case.state.value == exp.state, f"{kind}: fold {case.state}, diagram {exp.state}"

    def _advance(self, exp: Expect, message: Message, target: str) -> None:
        started, before = exp.started_at is not None, exp.state
        self._move(exp, message, target)
        if started and exp.state != before:
            if exp.state in PAUSES and before not in PAUSES:
                exp.paused_at = self.at
            elif before in PAUSES and exp.state not in PAUSES and exp.paused_at is not None:
                exp.waited += self.at - exp.paused_at
                exp.paused_at = None

    def _move(self, exp: Expect, message: Message, target: str) -> None:
        kind = message.type
        if exp.state is None:
            if kind == "offer":
                exp.offerer, exp.offeree = message.sender, message.recipient
            else:
                exp.requesting, exp.requested = message.sender, message.recipient
                exp.requested_at = self.at
        elif exp.state == "offered" and kind in ("written_request", "oral_request"):
            exp.requesting, exp.requested = message.sender, message.recipient
            exp.requested_at = self.at
        if kind == "oral_request":
            exp.oral_id, exp.oral_at, exp.confirmation = message.message_id, self.at, "owed"
        if kind == "written_confirmation":
            exp.confirmation = "given"
        if kind == "information_request":
            exp.question = True
        if kind == "additional_information":
            exp.question = False
        if target in WAITS:
            exp.resume = exp.state
        if kind == "consultation":
            exp.consulted, exp.rejected = True, False
            exp.resume = "in_execution" if exp.state == "in_execution" else None
        if kind == "conditions_accepted":
            exp.resume = None
        if kind == "conditions_rejected":
            exp.rejected = True
        if kind == "results":
            exp.results = True
        if target == "in_execution" and exp.started_at is None:
            exp.started_at = self.at
        if kind == "refusal" and exp.started_at is None and getattr(message, "scope") == "partial":  # noqa: B009
            exp.started_at = self.at
        if kind == "transfer_consent":
            third = getattr(message, "third_party")  # noqa: B009 - union member field
            if getattr(message, "granted"):  # noqa: B009
                exp.consents.add(third)
            else:
                exp.consents.discard(third)
        if target == "=":
            return
        if target == "<resume>":
            exp.state, exp.resume = exp.resume, None
        elif target == "<rejected>":
            exp.state, exp.resume = exp.resume or "under_consideration", None
        elif target == "<refusal>":
            exp.state = "refused" if getattr(message, "scope") == "full" else "in_execution"  # noqa: B009
        elif target == "<resume-or-withdrawn>":
            if getattr(message, "proceed"):  # noqa: B009
                exp.state, exp.resume = exp.resume, None
            else:
                exp.state, exp.resume = "withdrawn", None
        else:
            exp.state = target
        if exp.state in TERMINAL and exp.first_terminal is None:
            exp.first_terminal = exp.state

    @invariant()
    def one_state_and_terminal_is_final(self) -> None:
        for case_id, case in self.cases.items():
            if case is None:
                continue
            assert isinstance(case.state, CaseState)
            first = self.expect[case_id].first_terminal
            if first is not None:
                assert case.state.value == first

    def teardown(self) -> None:
        # The same sequence always yields the same result.
        cases: dict[str, Case | None] = dict.fromkeys(self.cases)
        again: list[Violation] = []
        for case_id, message, at in self.history:
            current = cases[case_id]
            if message is None:
                if current is not None:
                    current, found = elapse(current, at, AGREEMENT)
                    cases[case_id] = current
                    again.extend(found)
                continue
            cases[case_id], found = apply(current, message, at, AGREEMENT)
            again.extend(found)
        assert cases == self.cases
        assert again == self.all_violations


ProcedureMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_procedure_state_machine = ProcedureMachine.TestCase
