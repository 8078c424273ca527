"""The procedure as trainers read it: a transition table explored from the case fold itself.

`transitions()` starts from no case and sends every message type, from each
party of the case, in every case reachable that way, and lets the 3 days of
Art. 4.2 pass in each; the variants that lead to different places are tried
too (a full or a partial refusal, going ahead or withdrawing under Art. 6.3,
consent granted or refused under Art. 7.3). A step belongs to the table when
the fold records no error for it: a warning (refusing without consulting
first) leaves it allowed, as the umpire does. So the diagram (`mermaid`)
and the list of what each state allows (`allowed_table`) say what the
umpire does, not what someone wrote about it; docs/procedure.md holds their
output (`procedure_markdown`) and a test fails when the two disagree.
"""

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from simulator.protocol.agreement import WRITTEN_CONFIRMATION_WINDOW, Agreement
from simulator.protocol.case import TERMINAL_STATES, Case, CaseState, apply, elapse
from simulator.protocol.drafting import REQUEST_TYPES, draft
from simulator.protocol.messages import MESSAGE_TYPES, Message, parse_message
from simulator.protocol.parties import Official, Party
from simulator.protocol.rules import Severity

REQUESTING = "requesting"
REQUESTED = "requested"
OFFERING = "offering"
OFFERED = "offered"
# The passing of time, as the table names it.
CONFIRMATION_LAPSES = "3 days without written confirmation"
CLOCK = "the clock"

# States of a request still open: where withdrawal and the lapse of Art. 4.2 apply.
OPEN_STATES = tuple(s for s in CaseState if not s.terminal and s is not CaseState.OFFERED)


@dataclass(frozen=True, slots=True)
class Transition:
    """One allowed step: in `source` (None before a case exists), `message` from `sender`."""

    source: CaseState | None
    message: str  # a message type, with its variant in brackets where it leads elsewhere
    sender: str  # requesting | requested | offering | offered | the clock
    target: CaseState
    # The step ends a wait (Art. 4.2, 6.2, 6.3) and goes back to where the case was.
    resumes: bool = False


_AT = datetime(2000, 1, 3, 9, 0, tzinfo=UTC)
_PAST_THE_3_DAYS = WRITTEN_CONFIRMATION_WINDOW + timedelta(seconds=1)
_PARTIES = {
    pid: Party(
        id=pid,
        name=f"Party {pid}",
        head=Official(name=f"Head {pid}"),
        deputies=(Official(name=f"Deputy {pid}"),),
        seal=f"SEAL-{pid}",
        coordination_unit="Coordination unit",
    )
    for pid in ("alpha", "beta", "gamma")
}
_AGREEMENT = Agreement.of(tuple(_PARTIES.values()))
_CONTENT: dict[str, Any] = {
    "area": "public_order",
    "essence": "The essence of the case.",
    "purpose": "The purpose.",
    "justification": "The justification.",
    "assistance_sought": "The assistance sought.",
    "parts": ["one part", "the rest"],
    "urgent": True,
}
_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "refusal": {
        "full": {"scope": "full"},
        "partial": {"scope": "partial", "refused_parts": ["one part"]},
    },
    "confidentiality_decision": {"go ahead": {"proceed": True}, "withdraw": {"proceed": False}},
    "transfer_consent": {"granted": {"granted": True}, "refused": {"granted": False}},
}
_ORDER = {kind: index for index, kind in enumerate(MESSAGE_TYPES)}
_STATE_ORDER = {state: index for index, state in enumerate(CaseState)}


# The same for the life of the process, and the exploration takes a good half second.
@functools.cache
def transitions() -> tuple[Transition, ...]:
    """Every allowed step of the procedure, in state order, then message type order."""
    found: set[Transition] = set()
    seen: set[Case] = set()
    waiting: list[Case | None] = [None]
    while waiting:
        case = waiting.pop()
        source = None if case is None else case.state
        for label, sender, message in _moves(case):
            after, violations = apply(case, message, _AT, _AGREEMENT)
            if after is None or any(v.severity is Severity.ERROR for v in violations):
                continue
            resumes = (
                case is not None
                and case.resume_state is not None
                and after.state is case.resume_state
                and after.state is not case.state
            )
            found.add(Transition(source, label, sender, after.state, resumes))
            waiting.extend(_unseen(after, seen))
        if case is not None:
            # Art. 4.2 runs alongside the case: the 3 days may pass in any state.
            later, violations = elapse(case, _AT + _PAST_THE_3_DAYS, _AGREEMENT)
            if violations:
                found.add(Transition(case.state, CONFIRMATION_LAPSES, CLOCK, later.state))
                waiting.extend(_unseen(later, seen))
    return tuple(sorted(found, key=_sort_key))


def _sort_key(t: Transition) -> tuple[int, int, str, int, str]:
    kind = t.message.split(" ", 1)[0]
    return (
        -1 if t.source is None else _STATE_ORDER[t.source],
        _ORDER.get(kind, len(_ORDER)),
        t.message,
        _STATE_ORDER[t.target],
        t.sender,
    )


def _unseen(case: Case, seen: set[Case]) -> Iterator[Case]:
    # What no later step looks at is left out: counters and the clock.
    key = case._replace(messages=0, impediments=0, transferred_to=(), updated_at=_AT)
    if key not in seen:
        seen.add(key)
        yield key


def _moves(case: Case | None) -> Iterator[tuple[str, str, Message]]:
    """(label, sender's role, message) for every message worth trying in `case`."""
    if case is None:
        # A request makes its sender the requesting party; an offer, the offering one.
        yield "written_request", REQUESTING, _message("written_request", "", "alpha", "beta")
        yield "oral_request", REQUESTING, _message("oral_request", "", "alpha", "beta")
        yield "offer", OFFERING, _message("offer", "", "beta", "alpha")
        return
    pairs: list[tuple[str | None, str | None, str]] = [
        (case.requesting, case.requested, REQUESTING),
        (case.requested, case.requesting, REQUESTED),
    ]
    if case.requesting is None:
        pairs = [
            (case.offered_by, case.offered_to, OFFERING),
            (case.offered_to, case.offered_by, OFFERED),
        ]
    for kind in MESSAGE_TYPES:
        for variant in _VARIANTS.get(kind, {"": {}}):
            label = f"{kind} ({variant})" if variant else kind
            for sender, recipient, role in pairs:
                if sender is None or recipient is None:
                    continue
                if kind == "results_transfer":
                    if role != REQUESTING:
                        continue
                    # Art. 7.3: results go on to a third party.
                    yield label, role, _message(kind, variant, sender, "gamma")
                else:
                    yield label, role, _message(kind, variant, sender, recipient)


# Every message has the same id, so a written confirmation confirms any oral request
# the exploration made: one message per (type, variant, sender, recipient) will do.
_MESSAGE_ID = "step"
_MESSAGES: dict[tuple[str, str, str, str], Message] = {}


def _message(kind: str, variant: str, sender: str, recipient: str) -> Message:
    key = (kind, variant, sender, recipient)
    message = _MESSAGES.get(key)
    if message is None:
        extra = _VARIANTS[kind][variant] if variant else {}
        drafted = draft(
            kind,
            message_id=_MESSAGE_ID,
            case_id="case",
            sender=_PARTIES[sender],
            recipient=_PARTIES[recipient],
            fields={**_fields(kind), **extra},
        )
        message = _MESSAGES[key] = parse_message(drafted)
    return message


def _fields(kind: str) -> dict[str, Any]:
    if kind in REQUEST_TYPES:
        fields = dict(_CONTENT)
        if kind == "written_confirmation":
            fields["confirms"] = _MESSAGE_ID
        return fields
    if kind == "offer":
        return {"area": "public_order"}
    if kind in ("transfer_consent_request", "transfer_consent"):
        return {"third_party": "gamma"}
    return {}


# --- for people ----------------------------------------------------------------


def mermaid(steps: Sequence[Transition] | None = None) -> str:
    """The state diagram as Mermaid: every step that changes the state.

    A step allowed from every state of an open request (withdrawal, the lapse
    of Art. 4.2) is drawn once, from "any open request"; steps that leave the
    state as it is are in the table, not the diagram.
    """
    steps = transitions() if steps is None else steps
    sources: dict[tuple[str, CaseState], set[CaseState | None]] = defaultdict(set)
    for t in steps:
        if t.source is not t.target:
            sources[(t.message, t.target)].add(t.source)
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    everywhere = set(OPEN_STATES)
    for (message, target), froms in sources.items():
        rest: set[CaseState | None] = set(froms)
        if everywhere <= froms:
            edges[("open_request", target.value)].append(message)
            rest -= everywhere
        for source in rest:
            edges[("[*]" if source is None else source.value, target.value)].append(message)
    names = ["[*]", *(s.value for s in CaseState), "open_request"]
    order = {name: index for index, name in enumerate(names)}
    message_order = {t.message: index for index, t in enumerate(steps)}
    lines = [
        "stateDiagram-v2",
        '    state "any open request" as open_request',
        "    note right of open_request",
        "        " + ", ".join(s.value for s in OPEN_STATES[:4]) + ",",
        "        " + ", ".join(s.value for s in OPEN_STATES[4:]),
        "    end note",
    ]
    for (start, end), labels in sorted(
        edges.items(), key=lambda e: (order[e[0][0]], order[e[0][1]])
    ):
        ordered = sorted(_unique(labels), key=message_order.__getitem__)
        lines.append(f"    {start} --> {end} : {', '.join(ordered)}")
    lines += [f"    {s.value} --> [*]" for s in CaseState if s in TERMINAL_STATES]
    return "\n".join(lines) + "\n"


def allowed_table(steps: Sequence[Transition] | None = None) -> str:
    """What each state allows, from whom, and where it leads, as a Markdown table."""
    steps = transitions() if steps is None else steps
    rows = ["| state | message | from | leads to |", "|---|---|---|---|"]
    by_state: dict[CaseState | None, list[Transition]] = defaultdict(list)
    for t in steps:
        by_state[t.source].append(t)
    for state in (None, *CaseState):
        here = by_state.get(state, [])
        name = "(no case yet)" if state is None else f"`{state.value}`"
        if not here:
            rows.append(f"| {name} | nothing: the case is closed | | |")
            continue
        by_message: dict[str, list[Transition]] = defaultdict(list)
        for t in here:
            by_message[t.message].append(t)
        for message, group in by_message.items():
            senders = ", ".join(_unique(t.sender for t in group))
            rows.append(f"| {name} | {_message_cell(message)} | {senders} | {_leads_to(group)} |")
            name = ""
    return "\n".join(rows) + "\n"


def _message_cell(message: str) -> str:
    if message == CONFIRMATION_LAPSES:
        return f"*{message}* (Art. 4.2 violation)"
    kind, _, variant = message.partition(" ")
    return f"`{kind}`" + (f" {variant}" if variant else "")


def _leads_to(group: Sequence[Transition]) -> str:
    if all(t.resumes for t in group):
        return "back where it was: " + " / ".join(_unique(f"`{t.target.value}`" for t in group))
    # Some steps end a wait and some do not (conditions rejected: under consideration when
    # consulted before execution, back to execution when consulted in it).
    plain = {t.target for t in group if not t.resumes}
    return " / ".join(
        _unique(
            "stays"
            if t.target is t.source
            else f"back to `{t.target.value}`"
            if t.resumes and t.target not in plain
            else f"`{t.target.value}`"
            for t in group
        )
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


BEGIN_MARK = "<!-- BEGIN generated by `simulator procedure`: do not edit by hand -->"
END_MARK = "<!-- END generated -->"


def procedure_markdown() -> str:
    """The generated part of docs/procedure.md: the diagram and the table, between markers."""
    steps = transitions()
    return (
        f"{BEGIN_MARK}\n\n"
        "### State diagram\n\n"
        f"```mermaid\n{mermaid(steps)}```\n\n"
        "### What each state allows\n\n"
        f"{allowed_table(steps)}\n"
        f"{END_MARK}\n"
    )


def replace_generated(document: str) -> str:
    """`document` with its generated part (between the markers) as the code makes it today."""
    start = document.index(BEGIN_MARK)
    end = document.index(END_MARK) + len(END_MARK) + 1
    return document[:start] + procedure_markdown() + document[end:]
