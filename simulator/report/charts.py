"""The report's response-time chart, written as SVG text to inline in a page.

Per kind of answer a row: each case's time as a point, a box of the spread,
the deadline as a dashed line. As the sequence charts (sequence.py), it is
written element by element rather than drawn with matplotlib, which took
longer to import and lay out than the rest of a season's report; the boxes
are matplotlib's (quartiles by linear interpolation, whiskers to the furthest
time within 1.5 times the spread between them). Text stays text, in the font
the page names first; the same log gives the same bytes.
"""

import math
import statistics
from collections.abc import Sequence
from html import escape

from simulator.report.formatting import span
from simulator.report.model import CaseReport, ResponseMeasure, ResponseTimes
from simulator.report.sequence import FAULT, INK, MUTED, PAPER

_DAY = 86_400.0
_INCH = 72.0
_FONT = "font-family:'DejaVu Sans',sans-serif"
_GRID = "#dde3ea"
_CENTRE, _ASCENT = 0.35, 0.76  # a line of text's baseline against its centre, its top (ems)
_ADVANCE = 0.6  # DejaVu Sans's mean advance in ems, to place the legend's entries


def _days(seconds: float) -> float:
    return seconds / _DAY


def _jitter(index: int) -> float:
    """A fixed spread of points within a row, so that equal times do not hide each other."""
    return ((index * 7) % 11 - 5) * 0.045


MAX_POINTS = 400
"""Points drawn a row of the response chart: more only hide each other (the box and the
tally still count every case)."""


def sample_points(values: list[tuple[float, bool]]) -> list[tuple[float, bool]]:
    """At most MAX_POINTS of a row's points, spread evenly over the cases in their order,
    with the slowest always among them (the point a reader looks for)."""
    if len(values) <= MAX_POINTS:
        return values
    step = len(values) / MAX_POINTS
    chosen = {int(i * step) for i in range(MAX_POINTS - 1)}
    chosen.add(max(range(len(values)), key=lambda i: values[i][0]))
    return [values[i] for i in sorted(chosen)]


def _tally(measure: ResponseMeasure) -> str:
    owed, never, not_owed = len(measure.owed), len(measure.unanswered), len(measure.not_owed)
    return (
        f"n={measure.samples}"
        + (f", {owed} still owed" if owed else "")
        + (f", {never} never answered" if never else "")
        + (f", {not_owed} not owed" if not_owed else "")
    )


def _n(value: float) -> str:
    """A coordinate, to a hundredth of a point."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, text: str, size: float, fill: str, anchor: str) -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" style="font-size:{size}px;{_FONT};'
        f'text-anchor:{anchor};fill:{fill}">{escape(text)}</text>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, style: str) -> str:
    return f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" style="{style}"/>'


def ticks(limit: float) -> list[float]:
    """Round ticks from 0 to ``limit``: at most six steps of 1, 2, 2.5 or 5 times a power of ten."""
    if limit <= 0:
        return [0.0]
    power = 10.0 ** math.floor(math.log10(limit / 6))
    step = next(power * m for m in (1, 2, 2.5, 5, 10) if limit / (power * m) <= 6)
    return [index * step for index in range(int(limit / step + 1e-9) + 1)]


def _tick_label(value: float) -> str:
    return f"{value:g}"


def box_stats(values: Sequence[float]) -> tuple[float, float, float, float, float]:
    """(low whisker, first quartile, median, third quartile, high whisker), as matplotlib's
    boxplot computes them: quartiles by linear interpolation, whiskers to the furthest
    value within 1.5 interquartile ranges of the box."""
    ordered = sorted(values)
    if len(ordered) == 1:
        only = ordered[0]
        return only, only, only, only, only
    q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    reach = 1.5 * (q3 - q1)
    low = min(v for v in ordered if v >= q1 - reach)
    high = max(v for v in ordered if v <= q3 + reach)
    return low, q1, median, q3, high


def _legend(right: float, baseline: float) -> list[str]:
    """The key, right-aligned above the axes, one entry after the other."""
    legend = []
    cursor = right
    for label, marker in reversed(
        (
            ("answered", f"fill:{INK};stroke:{INK}"),
            ("after the deadline", f"fill:{FAULT};stroke:{FAULT}"),
            ("still owed", f"fill:none;stroke:{INK}"),
            ("deadline", ""),
        )
    ):
        cursor -= len(label) * 7 * _ADVANCE
        legend.append(_text(cursor, baseline, label, 7, INK, "start"))
        middle = cursor - 12
        if marker:
            legend.append(
                f'<circle cx="{_n(middle)}" cy="{_n(baseline - 2.5)}" r="2" '
                f'style="{marker};stroke-width:0.9"/>'
            )
        else:
            dashes = f"stroke:{FAULT};stroke-width:1.2;stroke-dasharray:4.44,1.92"
            legend.append(_line(middle - 7, baseline - 2.5, middle + 7, baseline - 2.5, dashes))
        cursor -= 30
    return legend


def _x_axis(
    x_max: float, left: float, right: float, top: float, bottom: float
) -> tuple[list[str], list[str]]:
    """The grid behind the points, and the ticks, their labels and the axis's name."""
    grid, marks = [], []
    for tick in ticks(x_max):
        at = left + tick / x_max * (right - left)
        grid.append(_line(at, top, at, bottom, f"stroke:{_GRID};stroke-width:0.6"))
        marks.append(_line(at, bottom, at, bottom + 3.5, f"stroke:{INK};stroke-width:0.8"))
        marks.append(_text(at, bottom + 7 + _ASCENT * 8, _tick_label(tick), 8, INK, "middle"))
    below = bottom + 7 + 8 * 1.2 + 3.5 + _ASCENT * 8
    marks.append(_text((left + right) / 2, below, "simulated days", 8, INK, "middle"))
    return grid, marks


def response_chart(cases: Sequence[CaseReport], times: ResponseTimes) -> str | None:
    """Per kind of answer: each case's time as a point, a box of the spread, the deadline as a line.

    None when no case got or owes any answer (nothing to draw).
    """
    points: dict[str, list[tuple[float, bool]]] = {m.name: [] for m in times.measures}
    for case in cases:
        t = case.times
        for name, answer in (
            ("written_confirmation", t.written_confirmation),
            ("acknowledgement", t.acknowledgement),
            ("decision", t.decision),
            ("results", t.results),
        ):
            # Answers that came, and those still owed (hollow, at the time waited so far).
            if (
                answer is not None
                and answer.after is not None
                and answer.status in ("answered", "owed")
            ):
                points[name].append((_days(answer.after), answer.status == "owed"))
    # A kind nobody answered still gets its row: its deadline and tally say so.
    rows: list[ResponseMeasure] = [
        m for m in times.measures if points[m.name] or m.unanswered or m.owed
    ]
    if not rows:
        return None
    width, height = 7.6 * _INCH, (0.9 + 0.85 * len(rows)) * _INCH
    left, right = 2.3 * _INCH, width - 0.2 * _INCH
    top, bottom = 0.35 * _INCH, height - 0.5 * _INCH
    limit = 0.0
    for measure in rows:
        limit = max(limit, *(day for day, _ in points[measure.name]), 0.0)
        if measure.reference_seconds:
            limit = max(limit, _days(measure.reference_seconds))
    x_max = limit * 1.08 + 0.1

    def x(day: float) -> float:
        return left + day / x_max * (right - left)

    def y(row: float) -> float:
        return top + (row + 0.5) / len(rows) * (bottom - top)

    unit = (bottom - top) / len(rows)  # a row's height in points
    grid, marks = _x_axis(x_max, left, right, top, bottom)
    parts: list[str] = []
    for row, measure in enumerate(rows):
        centre = y(row)
        marks.append(_line(left - 3.5, centre, left, centre, f"stroke:{INK};stroke-width:0.8"))
        lines = [measure.label, f"from {measure.counted_from}", _tally(measure)]
        for index, text in enumerate(lines):
            baseline = centre + (index - (len(lines) - 1) / 2) * 8 * 1.2 + _CENTRE * 8
            marks.append(_text(left - 7, baseline, text, 8, INK, "end"))
        values = points[measure.name]
        answered = [d for d, owed in values if not owed]
        reference = _days(measure.reference_seconds) if measure.reference_seconds else None
        if answered:
            low, q1, median, q3, high = box_stats(answered)
            half, cap = 0.275 * unit, 0.1375 * unit
            whisker = f"stroke:{MUTED};stroke-width:0.8"
            parts += [
                _line(x(low), centre, x(q1), centre, whisker),
                _line(x(q3), centre, x(high), centre, whisker),
                _line(x(low), centre - cap, x(low), centre + cap, whisker),
                _line(x(high), centre - cap, x(high), centre + cap, whisker),
                f'<rect x="{_n(x(q1))}" y="{_n(centre - half)}" width="{_n(x(q3) - x(q1))}" '
                f'height="{_n(2 * half)}" style="fill:{PAPER};stroke:{MUTED};stroke-width:0.8"/>',
                _line(x(median), centre - half, x(median), centre + half,
                      f"stroke:{INK};stroke-width:1.4"),
            ]  # fmt: skip
        # Only a sample past MAX_POINTS: a load run has a point for each of 100k cases.
        for index, (day, owed) in enumerate(sample_points(values)):
            late = reference is not None and day > reference
            edge = FAULT if late else INK
            fill = "none" if owed else edge
            parts.append(
                f'<circle cx="{_n(x(day))}" cy="{_n(y(row + _jitter(index)))}" r="2" '
                f'style="fill:{fill};stroke:{edge};stroke-width:0.9;opacity:0.85"/>'
            )
        if reference is not None:
            parts.append(
                _line(x(reference), y(row - 0.42), x(reference), y(row + 0.42),
                      f"stroke:{FAULT};stroke-width:1.4;stroke-dasharray:5.18,2.24")
            )  # fmt: skip
            # Left of the line, so the label never runs past the axes.
            parts.append(
                _text(x(reference) - 2, y(row - 0.44) - 0.24 * 7, measure.reference_label or "",
                      7, FAULT, "end")
            )  # fmt: skip
    axes = [
        _line(left, top, left, bottom, f"stroke:{MUTED};stroke-width:0.8"),
        _line(left, bottom, right, bottom, f"stroke:{MUTED};stroke-width:0.8"),
    ]
    legend = _legend(right, top - 4)
    summary = "; ".join(
        f"{m.label}: median {span(m.median_seconds)}" for m in rows if m.median_seconds
    )
    label = f"Response times per case. {summary}"
    w, h = _n(width), _n(height)
    return (
        f'<svg role="img" aria-label="{escape(label)}" width="{w}pt" height="{h}pt" '
        f'viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg" version="1.1">'
        f'<rect width="{w}" height="{h}" style="fill:#ffffff"/>'
        f"{''.join(grid)}{''.join(axes)}{''.join(parts)}{''.join(marks)}{''.join(legend)}</svg>"
    )
