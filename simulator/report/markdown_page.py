"""The report as Markdown: the same sections as the page, with Mermaid sequence diagrams.

Mermaid blocks render as diagrams where Markdown viewers support them
(GitHub, GitLab) and stay readable as text everywhere else.
"""

from collections.abc import Iterable, Sequence
from typing import TypeVar

from simulator.lineage import history
from simulator.report.formatting import (
    DEFAULT_CHARTED_CASES,
    MEASURE_COLUMNS,
    TABLE_PAGE_ROWS,
    Lettered,
    answer_text,
    case_area,
    case_parties,
    case_state,
    controller_text,
    counted,
    has_letter,
    measure_cells,
    sentence,
    settings_text,
    span,
    when,
)
from simulator.report.model import CaseReport, CaseStep, ControllerRow, ReportData
from simulator.wording import kind_words, state_words, words

# What Markdown or HTML would read as syntax in a participant's or author's words.
_SYNTAX = str.maketrans(
    {c: "\\" + c for c in "\\`*_[]#~!"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
)


def _plain(value: object) -> str:
    """Words from a scenario or a participant (a title, a name, a note, a gist), shown as
    written: on one line, and never as a heading, emphasis, a link or HTML (a title with
    a line break had added headings to the page, and `<script>` went through as is)."""
    text = "" if value is None else str(value)
    return " ".join(text.split()).translate(_SYNTAX)


def _cell(value: object) -> str:
    """Text that cannot break a table row: pipes escaped, line breaks folded, no HTML tag.

    The report's own cells may hold Markdown (a code span, a link); words from elsewhere
    come through `_plain` first."""
    text = "" if value is None else str(value)
    folded = " ".join(text.split()).replace("|", "\\|")
    return folded.replace("<", "&lt;").replace(">", "&gt;")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


_Row = TypeVar("_Row")


def _first_page(rows: Sequence[_Row]) -> tuple[Sequence[_Row], list[str]]:
    """A long table's first TABLE_PAGE_ROWS rows, and the line saying where the others are."""
    if len(rows) <= TABLE_PAGE_ROWS:
        return rows, []
    return rows[:TABLE_PAGE_ROWS], [
        f"The first {TABLE_PAGE_ROWS:,} of {len(rows):,} rows; report.html's pages and "
        "report.json have them all.",
        "",
    ]


def _mermaid(case: CaseReport) -> list[str]:
    """A sequence diagram; participants get plain aliases because ids may hold hyphens."""
    alias = {party: f"P{index}" for index, party in enumerate(case.lanes)}
    lines = ["```mermaid", "sequenceDiagram"]
    lines += [f"    participant {alias[p]} as {p}" for p in case.lanes]
    over = ",".join(alias[p] for p in case.lanes[:2]) or "P0"
    rows: list[CaseStep | ControllerRow] = sorted(
        [*case.steps, *case.controller], key=lambda row: row.position
    )
    for row in rows:
        if isinstance(row, ControllerRow):
            # A note's own text may hold Mermaid's syntax: only plain characters go in.
            said = "".join(c if c.isalnum() or c in " .,'-→()" else " " for c in row.text)
            said = " ".join(said.split())[:80]
            what = f"note: {said}" if row.kind == "note" else f"controller {said}"
            lines.append(f"    Note over {over}: ✎ {what} @ {when(row.time)}, pos {row.position}")
            continue
        step = row
        # Mermaid reads `;` and `#` as syntax: labels hold neither (types, rule ids, times).
        fault = f" ⚠ {', '.join(step.rule_ids)}" if step.rule_ids else ""
        label = f"{words(step.type)} @ {when(step.time)}, pos {step.position}{fault}"
        if step.kind == "message" and step.sender in alias and step.recipient in alias:
            lines.append(f"    {alias[step.sender]}->>{alias[step.recipient]}: {label}")
        else:
            lines.append(f"    Note over {over}: deadline passed @ {when(step.time)}{fault}")
    return [*lines, "```", ""]


def _summary(report: ReportData) -> list[str]:
    s = report.summary
    rows: list[tuple[str, object]] = [
        ("exercise", f"`{s.exercise}`"),
        ("title", _plain(s.title)),
        ("seed", s.seed if s.seed is not None else "not recorded"),
        (
            "lineage",
            f"this run is {history(s.lineage, s.resumed_at)}"
            if s.lineage or s.resumed_at
            else "an original run",
        ),
        ("simulated", f"{when(s.simulated_start)} → {when(s.simulated_end)} UTC"),
        ("simulated span", span(s.simulated_seconds)),
        ("ended because", s.ended_because or "no end was recorded"),
        ("events", s.events),
        ("messages", s.messages),
        ("deadline events", s.deadline_events),
        ("cases", s.cases),
        ("violations", s.violations),
        (
            "violations by severity",
            ", ".join(f"{k} {v}" for k, v in s.violations_by_severity.items()),
        ),
        ("rejections", s.rejections),
        ("controller's notes", s.notes),
        ("controller's actions", s.controller_actions),
    ]
    if s.agreement is not None:
        a = s.agreement
        if a.title is not None:
            rows.append(("agreement", _plain(a.title)))
        rows.append(
            (
                "agreement settings",
                settings_text(a),
            )
        )
    if s.unopened_cases:
        rows.append(("case ids never opened", ", ".join(s.unopened_cases)))
    if s.divergences:
        rows.append(
            (
                "divergences at positions",
                ", ".join(str(p) for p in s.divergences)
                + " (today's rules judge these otherwise; violations are shown as recorded)",
            )
        )
    warning: list[str] = []
    if report.integrity is not None:
        rows.append(("log integrity", report.integrity.describe()))
        if not report.integrity.sound:
            warning = [
                f"**This log does not verify.** {sentence(report.integrity.problem)} "
                "What follows is what the log says now.",
                "",
            ]
    lines = [
        "## 1. Summary",
        "",
        *warning,
        *_table(("fact", "value"), rows),
        "### Cases by final state",
        "",
    ]
    if s.cases_by_state:
        lines += _table(
            ("state", "cases"), ((state_words(k), v) for k, v in s.cases_by_state.items())
        )
    else:
        lines += ["The log holds no cases.", ""]
    if s.parties:
        lines += [
            "### Parties",
            "",
            *_table(("id", "name"), ((p.id, _plain(p.name)) for p in s.parties)),
        ]
    return lines


def _cases(report: ReportData, charted: Sequence[CaseReport]) -> list[str]:
    lines = ["## 2. Cases", ""]
    if not report.cases:
        return [*lines, "No case was opened.", ""]
    lines += [
        f"{len(report.cases)} cases; one sequence diagram per case, each arrow a message with "
        "its type, simulated time (UTC) and log position; ⚠ marks the rules it broke; ✎ marks "
        "the controller's notes and actions about the case.",
        "",
    ]
    for case in charted:
        area = f", area: {case_area(case)}" if case.area else ""
        lines += [
            f"### {case.case_id}",
            "",
            f"{case_parties(case)}{area}; final state **{case_state(case)}**; "
            f"{counted(len(case.steps), 'step')}, {counted(case.violations, 'violation')}.",
            "",
            *_mermaid(case),
            *(
                f"- ✎ pos {row.position}, {when(row.time)}: {_cell(_plain(controller_text(row)))}"
                for row in case.controller
            ),
            *([""] if case.controller else []),
        ]
    rest = report.cases[len(charted) :]
    if rest:
        shown, note = _first_page(rest)
        lines += [
            f"### The other {len(rest)} cases",
            "",
            *note,
            *_table(
                ("case", "parties", "final state", "steps", "violations", "opened"),
                (
                    (
                        c.case_id,
                        case_parties(c),
                        case_state(c),
                        len(c.steps),
                        c.violations,
                        when(c.opened_at),
                    )
                    for c in shown
                ),
            ),
        ]
    return lines


def _controller(report: ReportData) -> list[str]:
    lines = ["## 3. The controller's notes and actions", ""]
    if not report.controller:
        return [
            *lines,
            "The controller wrote no note and did nothing by hand (no pause, speed change, "
            "jump or inject sent by hand).",
            "",
        ]
    return [
        *lines,
        "What the controller wrote and did during the run, in log order; no party saw any of it.",
        "",
        *_table(
            ("pos", "time", "kind", "what", "case", "umpire's answer"),
            (
                (
                    row.position,
                    when(row.time),
                    row.kind,
                    _plain(row.text),
                    row.case or "",
                    _plain(row.answer),
                )
                for row in report.controller
            ),
        ),
    ]


def _responses(report: ReportData) -> list[str]:
    lines = [
        "## 4. Response times",
        "",
        f"Results are counted from the start of execution, as Art. {_results_article(report)} "
        "is checked. An answer is "
        "*late* when it came after its deadline, *still owed* when the log ends before it, "
        "*never answered* when the case closed while it was owed, and *not owed* when the case "
        "went another way first (a request answered straight away needs no acknowledgement; a "
        "lapsed or withdrawn case no decision).",
        "",
        *_table(
            MEASURE_COLUMNS,
            (measure_cells(m) for m in report.response_times.measures),
        ),
    ]
    timed = [c for c in report.cases if c.times.request_at or c.times.execution_started_at]
    if timed:
        shown, note = _first_page(timed)
        lines += [
            "### Per case",
            "",
            *note,
            *_table(
                ("case", "written confirmation", "acknowledgement", "decision", "results"),
                (
                    (
                        c.case_id,
                        answer_text(c.times.written_confirmation),
                        answer_text(c.times.acknowledgement),
                        answer_text(c.times.decision)
                        + (f" ({c.times.decision_kind})" if c.times.decision_kind else ""),
                        answer_text(c.times.results),
                    )
                    for c in shown
                ),
            ),
        ]
    return lines


def _violations(report: ReportData) -> list[str]:
    lines = ["## 5. Violations", ""]
    if not report.violations:
        return [*lines, "No violations of the procedure.", ""]
    for group in report.violations:
        lines += [f"### {group.label} — {counted(group.count, 'violation')}", ""]
        for rule in group.rules:
            lines += [
                f"**{rule.severity}** `{rule.rule_id}` ({len(rule.findings)}): {rule.summary}",
                "",
                *_table(
                    ("pos", "time", "event", "case", "party", "detail"),
                    (
                        (
                            f.position,
                            when(f.time),
                            kind_words(f.event_type),
                            f.case,
                            f.party or "",
                            _plain(f.what),
                        )
                        for f in rule.findings
                    ),
                ),
            ]
    return lines


def _rejections(report: ReportData) -> list[str]:
    lines = ["## 6. Rejections", ""]
    if not report.rejections:
        return [*lines, "The umpire rejected no submission.", ""]
    return [
        *lines,
        *_table(
            ("pos", "time", "party", "message id", "reason"),
            (
                # A reason quotes what was sent (a tag, a field's name): a participant's words.
                (r.position, when(r.time), r.party or "", r.message_id or "", _plain(r.reason))
                for r in report.rejections
            ),
        ),
    ]


def _expectations(report: ReportData) -> list[str]:
    e = report.expectations
    lines = ["## 7. Expectations", ""]
    if e.note:
        lines += [e.note, ""]
    if e.results:
        lines += _table(
            ("expectation", "target", "within", "met", "missed", "missed cases"),
            (
                (
                    f"`{r.id}` {_plain(r.description)}",
                    r.target + (f" in case {r.case}" if r.case else " in every case"),
                    span(r.within_seconds) if r.within_seconds else "by the end",
                    len(r.met),
                    len(r.missed),
                    ", ".join(r.missed),
                )
                for r in e.results
            ),
        )
    return lines


def _parties(report: ReportData) -> list[str]:
    lines = ["## 8. Parties", ""]
    if not report.parties:
        return [*lines, "No party took part.", ""]
    return [
        *lines,
        "A response is a message a party sent in a case whose previous message was addressed "
        "to it; its time is the gap between the two.",
        "",
        *_table(
            (
                "party",
                "sent",
                "received",
                "requesting in",
                "requested in",
                "violations caused",
                "rejections",
                "responses",
                "median response",
            ),
            (
                (
                    p.party,
                    p.sent,
                    p.received,
                    p.cases_requesting,
                    p.cases_requested,
                    p.violations_caused,
                    p.rejections,
                    p.responses,
                    span(p.median_response_seconds),
                )
                for p in report.parties
            ),
        ),
    ]


def _timeline(report: ReportData, letters: Lettered) -> list[str]:
    lines = ["## 9. Timeline", ""]
    if not report.timeline:
        return [*lines, "The log holds no events.", ""]
    shown, note = _first_page(report.timeline)
    return [
        *lines,
        *note,
        *_table(
            ("pos", "time", "case", "event", "from → to", "gist", "findings"),
            (
                (
                    row.position,
                    when(row.time),
                    row.case or "",
                    f"[{kind_words(row.type)}]({row.letter})"
                    if row.letter and has_letter(row.letter, letters)
                    else kind_words(row.type),
                    f"{row.sender} → {row.recipient}" if row.sender else row.recipient or "",
                    _plain(row.gist),
                    ", ".join(row.findings),
                )
                for row in shown
            ),
        ),
    ]


def render_markdown(
    report: ReportData, *, charted_cases: int = DEFAULT_CHARTED_CASES, letters: Lettered = False
) -> str:
    """The whole document; the first `charted_cases` cases get a sequence diagram each.

    `letters`: the letters are written beside it (`letters/`), so the timeline links them.
    """
    s = report.summary
    heading = _plain(s.title or s.exercise or "an exercise")
    charted = report.cases[: max(charted_cases, 0)]
    lines = [
        f"# After-action report: {heading}",
        "",
        f"Exercise `{s.exercise}`"
        + (f", seed {s.seed}" if s.seed is not None else "")
        + (f"; {history(s.lineage, s.resumed_at)}" if s.lineage or s.resumed_at else "")
        + (f", log id `{s.log_id}`" if s.log_id else "")
        + (f", last event hash `{s.head_hash}`" if s.head_hash else "")
        + f", report format {report.format}. Times are simulated, UTC.",
        "",
        *_summary(report),
        *_cases(report, charted),
        *_controller(report),
        *_responses(report),
        *_violations(report),
        *_rejections(report),
        *_expectations(report),
        *_parties(report),
        *_timeline(report, letters),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def _results_article(report: ReportData) -> str:
    a = report.summary.agreement
    return a.as_soon_as_possible_article if a is not None else "6.4"
