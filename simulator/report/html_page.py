"""The report as one self-contained HTML page: inline CSS, inline SVG charts, no scripts.

Nothing is fetched when the page opens (no fonts, scripts, images or
styles from elsewhere), so it can be mailed, archived or opened offline.
A table longer than TABLE_PAGE_ROWS (a load run's timeline) shows its first
page; the others are pages of their own beside it (`report-timeline-2.html`),
which render_html puts in the ``pages`` it is given.
"""

import math
from collections.abc import Iterable, MutableMapping, Sequence
from datetime import datetime
from html import escape

from simulator.lineage import history
from simulator.report.charts import response_chart
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
from simulator.report.model import (
    CaseReport,
    CaseStep,
    ControllerRow,
    ReportData,
    TimelineRow,
)
from simulator.report.sequence import sequence_chart
from simulator.wording import kind_words, state_words

_STYLE = """
:root { --ink: #1f3b57; --fault: #b3261e; --warn: #8a5a00; --muted: #5f6b78;
  --line: #d5dde6; --paper: #eef3f8; --desk: #5b3f8c; }
* { box-sizing: border-box; }
body { margin: 0; color: #1b2733; background: #fff;
  font: 14px/1.45 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
header, main, footer, nav { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; border-bottom: 3px solid var(--ink); padding-bottom: 12px; }
h1 { margin: 0; font-size: 26px; color: var(--ink); }
h2 { color: var(--ink); border-bottom: 1px solid var(--line); padding-bottom: 4px;
  margin-top: 36px; }
h3 { color: var(--ink); margin: 22px 0 6px; font-size: 16px; }
.sub { margin: 4px 0 0; color: var(--muted); }
nav { margin-top: 10px; font-size: 13px; }
nav a { margin-right: 14px; color: var(--ink); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px;
  background: var(--paper); min-width: 110px; }
.card b { display: block; font-size: 22px; color: var(--ink); }
.card span { font-size: 12px; color: var(--muted); }
.card.bad b { color: var(--fault); }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px 4px 0; text-align: left;
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line); }
td.n, th.n { text-align: right; padding-left: 10px; }
tr.fault td { color: var(--fault); }
tr.controller td { color: var(--desk); font-style: italic; }
.desk { color: var(--desk); }
ul.desk { margin: 4px 0 12px; padding-left: 20px; font-size: 13px; }
p.letters { font-size: 13px; margin: 0 0 14px; }
a.letter { color: var(--ink); }
code, .mono { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 12px; }
.sev { display: inline-block; border-radius: 3px; padding: 0 6px; font-size: 11px;
  color: #fff; background: var(--muted); }
.sev.error { background: var(--fault); }
.sev.warning { background: var(--warn); }
.note { color: var(--muted); font-style: italic; }
figure { margin: 14px 0 22px; }
figcaption { font-size: 13px; color: var(--muted); margin-bottom: 4px; }
figcaption b { color: var(--ink); }
figure svg { max-width: 100%; height: auto; display: block; }
.met { color: #1e6b34; }
.missed { color: var(--fault); }
.timeline td { white-space: nowrap; }
.timeline td:nth-child(6) { white-space: normal; min-width: 320px; }
.timeline td:nth-child(7) { white-space: normal; }
td a, .t { white-space: nowrap; }
table.facts td:first-child { color: var(--muted); padding-right: 18px; }
footer { margin: 40px auto 30px; color: var(--muted); font-size: 12px;
  border-top: 1px solid var(--line); padding-top: 10px; }
@media print { nav { display: none; } figure { break-inside: avoid; } }
"""

_SECTIONS = (
    ("summary", "Summary"),
    ("cases", "Cases"),
    ("controller", "The controller's notes and actions"),
    ("responses", "Response times"),
    ("violations", "Violations"),
    ("rejections", "Rejections"),
    ("expectations", "Expectations"),
    ("parties", "Parties"),
    ("timeline", "Timeline"),
)


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _t(value: datetime | None) -> str:
    """A simulated time that never breaks across lines."""
    return f'<span class="t">{_e(when(value))}</span>'


def _table(
    headers: Sequence[str] | None,
    rows: Iterable[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
    css: str = "",
) -> str:
    """A table of cells that are already HTML (escape text with `_e` first); no head row if None."""
    head = "".join(
        f'<th class="n">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers or ())
    )
    thead = f"<thead><tr>{head}</tr></thead>" if headers else ""
    body = []
    for index, row in enumerate(rows):
        cells = "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        kind = row_classes[index] if row_classes else ""
        body.append(f'<tr class="{kind}">{cells}</tr>' if kind else f"<tr>{cells}</tr>")
    table_class = f' class="{css}"' if css else ""
    return f"<table{table_class}>{thead}<tbody>{''.join(body)}</tbody></table>"


Pages = MutableMapping[str, str]
"""The pages of long tables, by file name (beside report.html), filled by render_html."""


def _paged(
    key: str,
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    pages: Pages | None,
    *,
    numeric: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
    css: str = "",
) -> str:
    """A table of its first TABLE_PAGE_ROWS rows, linking pages of the others (into ``pages``).

    A browser lays out a hundred thousand rows slowly and a reader never scrolls them.
    """
    if len(rows) <= TABLE_PAGE_ROWS:
        return _table(headers, rows, numeric=numeric, row_classes=row_classes, css=css)
    count = math.ceil(len(rows) / TABLE_PAGE_ROWS)
    names = [page_name(key, number) for number in range(1, count + 1)]

    def table(number: int) -> str:
        part = slice((number - 1) * TABLE_PAGE_ROWS, number * TABLE_PAGE_ROWS)
        classes = row_classes[part] if row_classes else None
        return _table(headers, rows[part], numeric=numeric, row_classes=classes, css=css)

    def index(current: int) -> str:
        links = " ".join(
            f"<b>{number}</b>"
            if number == current
            else f'<a href="{names[number - 1]}">{number}</a>'
            for number in range(1, count + 1)
        )
        return (
            f'<p class="note">{len(rows):,} rows, {TABLE_PAGE_ROWS:,} a page '
            f"(report.json has them all); pages: {links}</p>"
        )

    if pages is not None:
        for number in range(2, count + 1):
            # The page's links to a charted case go to it in report.html.
            body = table(number).replace('href="#case-', 'href="report.html#case-')
            pages[names[number - 1]] = (
                "<!DOCTYPE html>\n"
                '<html lang="en"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{_e(title)}, page {number}</title>"
                f"<style>{_STYLE}</style></head><body>"
                f'<header><h1>{_e(title)}, page {number} of {count}</h1><p class="sub">'
                f'<a href="report.html#{key}">back to the report</a></p></header>'
                f"<main>{index(number)}{body}</main></body></html>\n"
            )
    return index(1) + table(1)


def page_name(key: str, number: int) -> str:
    """The file of page ``number`` of a long table (the first is in report.html itself)."""
    return "report.html" if number == 1 else f"report-{key}-{number}.html"


def _case_link(case: str | None, charted: set[str]) -> str:
    if case is None:
        return ""
    if case in charted:
        return f'<a href="#case-{_e(case)}">{_e(case)}</a>'
    return f'<span class="t">{_e(case)}</span>'


def _step_text(step: CaseStep) -> str:
    if step.kind == "deadline":
        return "deadline passed"
    return f"{kind_words(step.type)} ({step.sender} → {step.recipient})"


def _summary(report: ReportData) -> str:
    s = report.summary
    cards = [
        ("simulated span", span(s.simulated_seconds), False),
        ("events", str(s.events), False),
        ("messages", str(s.messages), False),
        ("cases", str(s.cases), False),
        ("violations", str(s.violations), s.violations > 0),
        ("rejections", str(s.rejections), s.rejections > 0),
        ("controller's notes", str(s.notes), False),
        ("controller's actions", str(s.controller_actions), False),
    ]
    parts = [
        '<div class="cards">',
        *(
            f'<div class="card{" bad" if bad else ""}"><b>{_e(v)}</b><span>{_e(k)}</span></div>'
            for k, v, bad in cards
        ),
        "</div>",
    ]
    facts = [
        ("Exercise", f"<code>{_e(s.exercise)}</code>"),
        ("Title", _e(s.title)),
        ("Seed", _e(s.seed if s.seed is not None else "not recorded")),
        (
            "Lineage",
            _e(
                f"This run is {history(s.lineage, s.resumed_at)}."
                if s.lineage or s.resumed_at
                else "an original run"
            ),
        ),
        ("Simulated", f"{_e(when(s.simulated_start))} → {_e(when(s.simulated_end))} UTC"),
        ("Ended because", _e(s.ended_because or "no end was recorded")),
        ("Deadline events", _e(s.deadline_events)),
        (
            "Violations by severity",
            _e(", ".join(f"{k} {v}" for k, v in s.violations_by_severity.items())),
        ),
    ]
    if s.agreement is not None:
        a = s.agreement
        if a.title is not None:
            facts.append(("Agreement", _e(a.title)))
        facts.append(
            (
                "Agreement settings",
                _e(settings_text(a)),
            )
        )
    if s.unopened_cases:
        facts.append(("Case ids never opened", _e(", ".join(s.unopened_cases))))
    if s.divergences:
        facts.append(
            (
                "Divergences",
                _e(
                    "today's rules find other violations than the umpire recorded at positions "
                    + ", ".join(str(p) for p in s.divergences)
                    + "; the violations shown are the umpire's, as recorded"
                ),
            )
        )
    if report.integrity is not None:
        facts.append(("Log integrity", _e(report.integrity.describe())))
        if not report.integrity.sound:
            parts.append(
                '<p class="card bad"><b>This log does not verify.</b> '
                f"{_e(sentence(report.integrity.problem))} What follows is what the log says "
                "now.</p>"
            )
    parts.append(_table(None, facts, css="facts"))
    parts.append("<h3>Cases by final state</h3>")
    if s.cases_by_state:
        parts.append(
            _table(
                ("state", "cases"),
                [(_e(state_words(k)), _e(v)) for k, v in s.cases_by_state.items()],
                numeric=(1,),
            )
        )
    else:
        parts.append('<p class="note">The log holds no cases.</p>')
    if s.parties:
        parts.append("<h3>Parties</h3>")
        parts.append(
            _table(("id", "name"), [(f"<code>{_e(p.id)}</code>", _e(p.name)) for p in s.parties])
        )
    return "".join(parts)


def _case_count(report: ReportData) -> str:
    unopened = len(report.summary.unopened_cases)
    if not unopened:
        return f"{len(report.cases)} cases"
    return (
        f"{len(report.cases)} case ids: {report.summary.cases} cases opened and {unopened} "
        "named by messages but never opened"
    )


def _letters(case: CaseReport) -> str:
    """The case's letters, each linked: one for every message that went in writing."""
    links = [
        f'<a class="letter" href="{_e(step.letter)}">'
        f"#{step.position} {_e(kind_words(step.type))}</a>"
        for step in case.steps
        if step.letter
    ]
    if not links:
        return ""
    return f'<p class="letters">Letters: {" · ".join(links)}</p>'


def _cases(
    report: ReportData, charted: list[CaseReport], letters: Lettered, pages: Pages | None
) -> str:
    if not report.cases:
        return '<p class="note">No case was opened.</p>'
    parts = [
        f"<p>{_case_count(report)}. Each chart has a lane per party and an arrow per "
        "message in log order, labelled with its type; the left column gives the log position "
        "and simulated time (UTC). Red arrows caused violations, named under the arrow, one "
        "rule a line. The controller's notes and actions about a case are drawn in purple "
        "where they came and listed under its chart.</p>"
    ]
    for case in charted:
        caption = (
            f"<b>{_e(case.case_id)}</b> — {_e(case_parties(case))}"
            + (f", area: {_e(case_area(case))}" if case.area else "")
            + f"; final state <b>{_e(case_state(case))}</b>; {counted(len(case.steps), 'step')}, "
            f"{counted(case.violations, 'violation')}"
        )
        parts.append(
            f'<figure id="case-{_e(case.case_id)}" class="sequence">'
            f"<figcaption>{caption}</figcaption>{sequence_chart(case)}</figure>"
        )
        if case.controller:
            parts.append(_desk_list(case.controller))
        if letters:
            parts.append(_letters(case))
    rest = report.cases[len(charted) :]
    if rest:
        parts.append(
            f'<h3>The other {len(rest)} cases</h3><p class="note">Charted above are the first '
            f"{len(charted)} cases in the order they were opened; report.json has every step of "
            "every case.</p>"
        )
        parts.append(
            _paged(
                "cases",
                "The other cases",
                ("case", "parties", "final state", "steps", "violations", "opened", "last step"),
                [
                    (
                        _e(c.case_id),
                        _e(case_parties(c)),
                        _e(case_state(c)),
                        _e(len(c.steps)),
                        _e(c.violations),
                        _t(c.opened_at),
                        _e(_step_text(c.steps[-1])),
                    )
                    for c in rest
                ],
                pages,
                numeric=(3, 4),
                row_classes=["fault" if c.violations else "" for c in rest],
            )
        )
    return "".join(parts)


def _desk_list(rows: Sequence[ControllerRow]) -> str:
    """The controller's notes and actions about one case, under its chart."""
    items = "".join(
        f'<li class="desk" data-position="{row.position}">#{row.position} {_t(row.time)} '
        f"{_e(controller_text(row))}</li>"
        for row in rows
    )
    return f'<ul class="desk">{items}</ul>'


def _controller(report: ReportData, charted: set[str]) -> str:
    if not report.controller:
        return (
            '<p class="note">The controller wrote no note and did nothing by hand (no pause, '
            "speed change, jump or inject sent by hand).</p>"
        )
    return (
        "<p>What the controller wrote and did during the run, in log order; no party saw any "
        "of it. A note is tied to the case it names, or else to the case the last message "
        "before it was about; an inject sent by hand to the case its message went into.</p>"
        + _table(
            ("pos", "time", "kind", "what", "case", "umpire's answer"),
            [
                (
                    _e(row.position),
                    _t(row.time),
                    _e(row.kind),
                    _e(row.text),
                    _case_link(row.case, charted),
                    _e(row.answer),
                )
                for row in report.controller
            ],
            numeric=(0,),
            css="controller",
        )
    )


def _listed(cases: Sequence[str]) -> str:
    return ", ".join(cases) or "—"


def _responses(report: ReportData, charted: set[str], pages: Pages | None) -> str:
    chart = response_chart(report.cases, report.response_times)
    terms = report.summary.agreement
    article = terms.as_soon_as_possible_article if terms is not None else "6.4"
    parts = []
    if chart is None:
        parts.append('<p class="note">No case received any answer, so there are no times.</p>')
    else:
        parts.append(
            "<figure><figcaption>Each point is one case; boxes show the spread of answered "
            "cases; dashed red lines are the deadlines the agreement or the exercise sets. "
            f"Results are counted from the start of execution, as Art. {article} is checked; "
            "hollow "
            f"points are still owed when the log ends.</figcaption>{chart}</figure>"
        )
    parts.append(
        "<p>An answer is <i>late</i> when it came after its deadline, <i>still owed</i> when "
        "the log ends before it, <i>never answered</i> when the case closed while it was owed, "
        "and <i>not owed</i> when the case went another way first: a request answered straight "
        "away with acceptance, consultation or refusal needs no acknowledgement, and a case "
        "that lapsed or was withdrawn no decision.</p>"
    )
    parts.append(
        _table(
            MEASURE_COLUMNS,
            [[_e(cell) for cell in measure_cells(m)] for m in report.response_times.measures],
            numeric=(2, 3, 4),
        )
    )
    timed = [c for c in report.cases if c.times.request_at or c.times.execution_started_at]
    if timed:
        parts.append("<h3>Per case</h3>")
        parts.append(
            _paged(
                "responses",
                "Response times per case",
                ("case", "written confirmation", "acknowledgement", "decision", "results"),
                [
                    (
                        _case_link(c.case_id, charted),
                        _e(answer_text(c.times.written_confirmation)),
                        _e(answer_text(c.times.acknowledgement)),
                        _e(
                            answer_text(c.times.decision)
                            + (f" ({c.times.decision_kind})" if c.times.decision_kind else "")
                        ),
                        _e(answer_text(c.times.results)),
                    )
                    for c in timed
                ],
                pages,
            )
        )
    return "".join(parts)


def _violations(report: ReportData, charted: set[str]) -> str:
    if not report.violations:
        return '<p class="note">No violations of the procedure.</p>'
    parts = []
    for group in report.violations:
        parts.append(f"<h3>{_e(group.label)} — {counted(group.count, 'violation')}</h3>")
        for rule in group.rules:
            parts.append(
                f'<p><span class="sev {_e(rule.severity)}">{_e(rule.severity)}</span> '
                f"<code>{_e(rule.rule_id)}</code> ({len(rule.findings)}): {_e(rule.summary)}</p>"
            )
            parts.append(
                _table(
                    ("pos", "time", "event", "case", "party", "detail"),
                    [
                        (
                            _e(f.position),
                            _t(f.time),
                            _e(kind_words(f.event_type)),
                            _case_link(f.case, charted),
                            _e(f.party or ""),
                            _e(f.what),
                        )
                        for f in rule.findings
                    ],
                    numeric=(0,),
                )
            )
    return "".join(parts)


def _rejections(report: ReportData) -> str:
    if not report.rejections:
        return '<p class="note">The umpire rejected no submission.</p>'
    return _table(
        ("pos", "time", "party", "message id", "reason"),
        [
            (
                _e(r.position),
                _t(r.time),
                _e(r.party or ""),
                _e(r.message_id or ""),
                _e(r.reason),
            )
            for r in report.rejections
        ],
        numeric=(0,),
        row_classes=["fault"] * len(report.rejections),
    )


def _names(ids: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _expectations(report: ReportData) -> str:
    e = report.expectations
    parts = [f'<p class="note">{_e(e.note)}</p>'] if e.note else []
    if e.results:
        parts.append(
            _table(
                ("expectation", "target", "within", "met", "missed", "missed cases"),
                [
                    (
                        f"<code>{_e(r.id)}</code> {_e(r.description)}",
                        _e(f"{r.target}" + (f" in case {r.case}" if r.case else " in every case")),
                        _e(span(r.within_seconds) if r.within_seconds else "by the end"),
                        f'<span class="met">{len(r.met)}</span>',
                        f'<span class="{"missed" if r.missed else "met"}">{len(r.missed)}</span>',
                        _e(_names(r.missed)),
                    )
                    for r in e.results
                ],
                numeric=(3, 4),
            )
        )
    return "".join(parts)


def _parties(report: ReportData) -> str:
    if not report.parties:
        return '<p class="note">No party took part.</p>'
    return (
        "<p>A response is a message a party sent in a case whose previous message was "
        "addressed to it; its time is the gap between the two.</p>"
        + _table(
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
            [
                (
                    f"<code>{_e(p.party)}</code> {_e(p.name)}",
                    _e(p.sent),
                    _e(p.received),
                    _e(p.cases_requesting),
                    _e(p.cases_requested),
                    _e(p.violations_caused),
                    _e(p.rejections),
                    _e(p.responses),
                    _e(span(p.median_response_seconds) or "—"),
                )
                for p in report.parties
            ],
            numeric=(1, 2, 3, 4, 5, 6, 7, 8),
        )
    )


def _event(row: TimelineRow, letters: Lettered) -> str:
    """The event's kind, linked to its letter where it has one."""
    if row.letter and has_letter(row.letter, letters):
        return f'<a class="letter" href="{_e(row.letter)}">{_e(kind_words(row.type))}</a>'
    return _e(kind_words(row.type))


def _timeline(report: ReportData, charted: set[str], letters: Lettered, pages: Pages | None) -> str:
    if not report.timeline:
        return '<p class="note">The log holds no events.</p>'
    desk = {row.position for row in report.controller}
    return _paged(
        "timeline",
        "Timeline",
        ("pos", "time", "case", "event", "from → to", "gist", "findings"),
        [
            (
                _e(row.position),
                _t(row.time),
                _case_link(row.case, charted),
                _event(row, letters),
                _e(f"{row.sender} → {row.recipient}" if row.sender else row.recipient or ""),
                f'<span class="gist">{_e(row.gist)}</span>',
                _e(", ".join(row.findings)),
            )
            for row in report.timeline
        ],
        pages,
        numeric=(0,),
        row_classes=[
            "fault" if row.findings else "controller" if row.position in desk else ""
            for row in report.timeline
        ],
        css="timeline",
    )


def render_html(
    report: ReportData,
    *,
    charted_cases: int = DEFAULT_CHARTED_CASES,
    letters: Lettered = False,
    pages: Pages | None = None,
) -> str:
    """The whole page; the first `charted_cases` cases get a sequence chart each.

    `letters`: the letters are written beside the page (`letters/`), so it links them
    (given as paths: only those). `pages`: where the pages of long tables go, by file
    name, to be written beside the page (the page links them either way).
    """
    s = report.summary
    charted = report.cases[: max(charted_cases, 0)]
    charted_ids = {c.case_id for c in charted}
    heading = s.title or s.exercise or "an exercise"
    seed = f" · seed {s.seed}" if s.seed is not None else ""
    fork = f" · {history(s.lineage, s.resumed_at)}" if s.lineage or s.resumed_at else ""
    bodies = {
        "summary": _summary(report),
        "cases": _cases(report, charted, letters, pages),
        "controller": _controller(report, charted_ids),
        "responses": _responses(report, charted_ids, pages),
        "violations": _violations(report, charted_ids),
        "rejections": _rejections(report),
        "expectations": _expectations(report),
        "parties": _parties(report),
        "timeline": _timeline(report, charted_ids, letters, pages),
    }
    sections = "".join(
        f'<section id="{key}"><h2>{number}. {_e(title)}</h2>{bodies[key]}</section>'
        for number, (key, title) in enumerate(_SECTIONS, start=1)
    )
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in _SECTIONS)
    identity = ", ".join(
        part
        for part in (
            f"log id {s.log_id}" if s.log_id else "",
            f"last event hash {s.head_hash}" if s.head_hash else "",
            f"report format {report.format}",
        )
        if part
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>After-action report: {_e(heading)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        # <bdi>: a right-to-left mark in the title had turned the facts after it around.
        f'<header><h1>After-action report</h1><p class="sub"><bdi>{_e(heading)}</bdi> · exercise '
        f"<code>{_e(s.exercise)}</code>{_e(seed)}{_e(fork)} · {_e(when(s.simulated_start))} → "
        f"{_e(when(s.simulated_end))} UTC</p></header>"
        f"<nav>{nav}</nav><main>{sections}</main>"
        f"<footer>Read from the event log alone: {_e(identity)}. Times are simulated, UTC."
        "</footer></body></html>\n"
    )
