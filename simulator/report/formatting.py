"""How every rendering of a report writes simulated times, durations and articles.

Times are shown in UTC whatever zone the log recorded them in, so the same
log gives the same report on every machine. Times, durations and the
procedure's names are written as everywhere else (simulator.wording).
"""

import re
from collections.abc import Set

from simulator.report.model import (
    NEVER_OPENED,
    AgreementTerms,
    Answer,
    CaseReport,
    ControllerRow,
    ResponseMeasure,
)
from simulator.wording import area_words, span, state_words, when

__all__ = [
    "DEFAULT_CHARTED_CASES",
    "MAX_LETTERS",
    "MEASURE_COLUMNS",
    "TABLE_PAGE_ROWS",
    "Lettered",
    "answer_text",
    "article_key",
    "article_label",
    "case_area",
    "case_parties",
    "case_state",
    "controller_text",
    "counted",
    "has_letter",
    "measure_cells",
    "settings_text",
    "span",
    "when",
]

DEFAULT_CHARTED_CASES = 40
"""Cases drawn in full in the page and the Markdown; the rest go in a compact table,
which keeps the report of a 200-case run small."""

TABLE_PAGE_ROWS = 1000
"""Rows of a long table (timeline, cases) on one page: the HTML report shows the first
page and writes the others beside it; the Markdown shows the first; report.json has all."""

MAX_LETTERS = 2000
"""Beyond this many written messages (a load run's log) the report writes only the letters
of its charted cases: nobody reads a hundred thousand letters, and writing them took
longer than the whole rest of the report. `simulator letters --case ID` writes any case's."""

Lettered = bool | Set[str]
"""Which letters lie beside a page: all (True), none (False), or these paths only."""


def has_letter(path: str | None, letters: Lettered) -> bool:
    """Whether the letter at ``path`` is written beside the page, so it can be linked."""
    if path is None or letters is False:
        return False
    return letters is True or path in letters


def article_label(article: str) -> str:
    """`Art. 4.2`, `Art. 4.2, 4.4`; procedural rules without an article say so."""
    if not any(c.isdigit() for c in article):
        return "no article (procedure)"
    return f"Art. {article}"


def article_key(article: str) -> tuple[tuple[int, ...], str]:
    """Sorts articles in the agreement's order (4.2 before 4.10); rules without one come last."""
    numbers = tuple(int(n) for n in re.findall(r"\d+", article))
    return (numbers or (10**6,), article)


def sentence(text: str | None) -> str:
    """Text ending as a sentence does, for running on with another."""
    text = (text or "").rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def counted(number: int, noun: str) -> str:
    """`1 step`, `3 steps`."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def case_parties(case: CaseReport) -> str:
    """Who asked whom (`a → b`), or who offered to whom; the lanes where neither is known."""
    if case.requesting and case.requested:
        return f"{case.requesting} → {case.requested}"
    if case.offered_by and case.offered_to:
        return f"offer {case.offered_by} → {case.offered_to}"
    return " · ".join(case.lanes)


def case_state(case: CaseReport) -> str:
    return "never opened" if case.state == NEVER_OPENED else state_words(case.state)


def case_area(case: CaseReport) -> str:
    return area_words(case.area)


def answer_text(answer: Answer | None) -> str:
    """One case's answer in a table cell: `1d 4h`, `4d (late)`, `still owed (2d so far)`."""
    if answer is None:
        return ""
    if answer.status == "answered":
        return span(answer.after) + (" (late)" if answer.late else "")
    if answer.status == "owed":
        so_far = f" ({span(answer.after)} so far{', late' if answer.late else ''})"
        return "still owed" + (so_far if answer.after is not None else "")
    if answer.status == "unanswered":
        return "never answered" + (f": {answer.note}" if answer.note else "")
    return "not owed" + (f": {answer.note}" if answer.note else "")


def controller_text(row: ControllerRow) -> str:
    """A note or an action in a sentence: `note: …`, `the controller paused the clock`."""
    if row.kind == "note":
        return f"note: {row.text}"
    return f"the controller {row.text}"


def settings_text(a: AgreementTerms) -> str:
    """The agreement settings, each with the article of the agreement it comes from."""
    return (
        f"promptly {span(a.promptly_seconds)} (Art. {a.promptly_article}); as soon as possible "
        f"{span(a.as_soon_as_possible_seconds)} (Art. {a.as_soon_as_possible_article}); "
        f"written confirmation {span(a.written_confirmation_seconds)} "
        f"(Art. {a.written_confirmation_article}); working language {a.working_language} "
        f"(Art. {a.working_language_article})"
    )


# The response-time table, the same in the HTML and the Markdown report.
MEASURE_COLUMNS = (
    "answer",
    "from",
    "answered",
    "median",
    "longest",
    "deadline",
    "late",
    "still owed",
    "never answered",
    "not owed",
)


def measure_cells(m: ResponseMeasure) -> tuple[str, ...]:
    """One row of the response-time table, as text (each page escapes it its own way)."""

    def listed(cases: tuple[str, ...] | list[str]) -> str:
        return ", ".join(cases) or "—"

    return (
        m.label,
        m.counted_from,
        str(m.samples),
        span(m.median_seconds),
        span(m.max_seconds),
        m.reference_label or "none set by the agreement",
        listed(m.over_reference),
        listed(m.owed),
        listed(m.unanswered),
        listed(m.not_owed),
    )
