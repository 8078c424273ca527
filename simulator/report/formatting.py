"""How every rendering of a report writes simulated times, durations and articles.

Times are shown in UTC whatever zone the log recorded them in, so the same
log gives the same report on every machine.
"""

import re
from datetime import UTC, datetime

from simulator.report.model import NEVER_OPENED, AgreementTerms, CaseReport

DEFAULT_CHARTED_CASES = 40
"""Cases drawn in full in the page and the Markdown; the rest go in a compact table,
which keeps the report of a 200-case run small."""

_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60))


def when(value: datetime | None) -> str:
    """A simulated instant to the minute, in UTC: `2026-03-02 11:00`."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def span(seconds: float | None) -> str:
    """A duration to the minute, in at most two units: `1d 4h`, `5h 5m`, `12m`, `0m`.

    Two units are enough to compare a response with a deadline of days or
    hours; the exact seconds are in report.json.
    """
    if seconds is None:
        return ""
    rest = round(seconds / 60) * 60
    parts: list[str] = []
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        if count or parts:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    shown = [p for p in parts if not p.startswith("0")] or ["0m"]
    return " ".join(shown)


def article_label(article: str) -> str:
    """`Art. 4.2`, `Art. 4.2, 4.4`; procedural rules without an article say so."""
    if not any(c.isdigit() for c in article):
        return "no article (procedure)"
    return f"Art. {article}"


def article_key(article: str) -> tuple[tuple[int, ...], str]:
    """Sorts articles in the agreement's order (4.2 before 4.10); rules without one come last."""
    numbers = tuple(int(n) for n in re.findall(r"\d+", article))
    return (numbers or (10**6,), article)


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
    return "never opened" if case.state == NEVER_OPENED else case.state


def settings_text(a: AgreementTerms) -> str:
    """The agreement settings, each with the article of the agreement it comes from."""
    return (
        f"promptly {span(a.promptly_seconds)} (Art. {a.promptly_article}); as soon as possible "
        f"{span(a.as_soon_as_possible_seconds)} (Art. {a.as_soon_as_possible_article}); "
        f"written confirmation {span(a.written_confirmation_seconds)} "
        f"(Art. {a.written_confirmation_article}); working language {a.working_language} "
        f"(Art. {a.working_language_article})"
    )
