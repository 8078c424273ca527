"""The report's charts, drawn with matplotlib and returned as SVG text to inline in a page.

Each chart is its own `Figure` (no pyplot, so no global figure registry and
no GUI backend). Text stays text in the SVG (`svg.fonttype: none`), which
keeps files small and lets a reader search and copy it. Every id in a chart
gets the chart's own prefix, because matplotlib numbers its groups afresh
in each figure (`figure_1`, `axes_1`) and many charts share one page; the
hash salt is fixed and the date matplotlib would stamp is left out, so the
same log gives the same bytes.
"""

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from html import escape

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from simulator.report.formatting import span, when
from simulator.report.model import (
    CaseReport,
    CaseStep,
    ControllerRow,
    ResponseMeasure,
    ResponseTimes,
)
from simulator.wording import words

INK = "#1f3b57"
FAULT = "#b3261e"
MUTED = "#8a96a3"
PAPER = "#eef3f8"
DESK = "#5b3f8c"

_DAY = 86_400.0
_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.DOTALL)
# Where an SVG names or refers to an id: id="x", url(#x), href="#x", xlink:href="#x".
_ID_REFERENCE = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


@contextmanager
def _style(salt: str) -> Iterator[None]:
    # The page names the same font family first, so text is laid out as measured.
    with mpl.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": salt,
            "font.family": "DejaVu Sans",
            "font.size": 8,
            "axes.edgecolor": MUTED,
            "axes.labelcolor": INK,
            "xtick.color": INK,
            "ytick.color": INK,
        }
    ):
        yield


def _svg(figure: Figure, prefix: str, label: str) -> str:
    """The figure as an inline <svg>: no XML prolog, no date, ids prefixed, labelled for readers."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "coop-simulator"})
    text = _PROLOG.sub("", buffer.getvalue(), count=1)
    text = _ID_REFERENCE.sub(lambda m: f"{m[1]}{prefix}-{m[2]}", text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1).rstrip()


def _place_axes(figure: Figure, width: float, height: float, margins: tuple[float, ...]) -> Axes:
    """Axes placed by margins in inches (left, right, top, bottom), so text never moves them."""
    left, right, top, bottom = margins
    return figure.add_axes(
        (
            left / width,
            bottom / height,
            (width - left - right) / width,
            (height - top - bottom) / height,
        )
    )


# A row of a sequence chart: a message or deadline (a step), or the controller's entry.
_Row = CaseStep | ControllerRow
_STEP_HEIGHT = 0.5
_RULE_HEIGHT = 0.2  # one more line under the arrow per rule after the first
_NOTE_CHARS = 70


def _rows(case: CaseReport) -> list[_Row]:
    rows: list[_Row] = [*case.steps, *case.controller]
    return sorted(rows, key=lambda row: row.position)


def _row_height(row: _Row) -> float:
    if isinstance(row, CaseStep):
        return _STEP_HEIGHT + _RULE_HEIGHT * max(len(row.rule_ids) - 1, 0)
    return _STEP_HEIGHT


def _desk_label(row: ControllerRow) -> str:
    text = f"note: {row.text}" if row.kind == "note" else f"controller {row.text}"
    text = " ".join(text.split())
    return text if len(text) <= _NOTE_CHARS else text[: _NOTE_CHARS - 1] + "…"


def sequence_chart(case: CaseReport) -> str:
    """One lane per party, one arrow per message in log order; faults in red with their rules.

    The rules a message broke go under its arrow one a line, so the label fits between
    the lanes however many there are; the controller's notes and actions about the case
    are rows of their own, in purple.
    """
    lanes = case.lanes
    rows = _rows(case)
    column = {party: index for index, party in enumerate(lanes)}
    # Heights in inches; y in the same units, downwards from the lanes' heads.
    tops: list[float] = []
    y = 0.0
    for row in rows:
        tops.append(y)
        y += _row_height(row)
    body = max(y, _STEP_HEIGHT)
    width = 1.7 + 2.1 * max(len(lanes), 2)
    # The axes span exactly the rows and the lanes' heads (0.95 in), so a unit is an inch.
    height = 0.2 + 0.95 + body
    name = f"sequence-{case.case_id}"
    with _style(name):
        figure = Figure(figsize=(width, height))
        axes = _place_axes(figure, width, height, (1.6, 0.1, 0.1, 0.1))
        last_lane = max(len(lanes) - 1, 1)
        axes.set_xlim(-0.55, last_lane + 0.55)
        # An arrow sits 0.2 in below its row's top; the lanes' heads 0.5 in above the rows.
        axes.set_ylim(body, -0.95)
        for spine in axes.spines.values():
            spine.set_visible(False)
        axes.tick_params(axis="y", length=0, labelsize=7.5)
        axes.set_xticks([])
        axes.set_yticks(
            [top + 0.25 for top in tops],
            [f"#{row.position}   {when(row.time)}" for row in rows],
            color=INK,
        )
        for party, x in column.items():
            axes.vlines(x, -0.6, body, colors=MUTED, linestyles=(0, (3, 3)), lw=0.9)
            axes.text(
                x,
                -0.75,
                party,
                ha="center",
                va="center",
                fontsize=8.5,
                fontweight="bold",
                color=INK,
                bbox={"boxstyle": "round,pad=0.4", "fc": PAPER, "ec": INK, "lw": 0.8},
            )
        for top, row in zip(tops, rows, strict=True):
            line = top + 0.25
            centre = last_lane / 2
            if isinstance(row, ControllerRow):
                axes.hlines(line, -0.4, last_lane + 0.4, colors=DESK, linestyles=":", lw=1.2)
                axes.text(
                    centre,
                    line - 0.04,
                    _desk_label(row),
                    ha="center",
                    va="bottom",
                    color=DESK,
                    fontsize=7.5,
                    fontstyle="italic",
                )
                continue
            faulty = bool(row.rule_ids)
            colour = FAULT if faulty else INK
            # Lanes hold every sender and recipient, so only a deadline lacks them.
            if row.kind == "deadline" or row.sender not in column or row.recipient not in column:
                axes.hlines(line, -0.4, last_lane + 0.4, colors=FAULT, linestyles="--", lw=1.2)
                axes.text(
                    centre,
                    line - 0.04,
                    "deadline passed",
                    ha="center",
                    va="bottom",
                    color=FAULT,
                    fontsize=8,
                    fontstyle="italic",
                )
            else:
                start, end = column[row.sender], column[row.recipient]
                centre = (start + end) / 2
                axes.annotate(
                    "",
                    xy=(end, line),
                    xytext=(start, line),
                    arrowprops={
                        "arrowstyle": "-|>",
                        "color": colour,
                        "lw": 1.6 if faulty else 1.2,
                        "shrinkA": 0,
                        "shrinkB": 0,
                        "mutation_scale": 11,
                    },
                )
                axes.text(
                    centre,
                    line - 0.04,
                    words(row.type),
                    ha="center",
                    va="bottom",
                    color=colour,
                    fontsize=8,
                    fontweight="bold" if faulty else "normal",
                )
            for index, rule in enumerate(row.rule_ids):
                axes.text(
                    centre,
                    line + 0.05 + _RULE_HEIGHT * index,
                    "⚠ " + rule,
                    ha="center",
                    va="top",
                    color=FAULT,
                    fontsize=7.5,
                )
        label = (
            f"Sequence chart of case {case.case_id}: {len(case.steps)} steps between "
            f"{', '.join(lanes)}; {case.violations} violations"
            + (
                f"; {len(case.controller)} notes and actions of the controller"
                if case.controller
                else ""
            )
        )
        return _svg(figure, name, label)


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
    width, height = 7.6, 0.9 + 0.85 * len(rows)
    with _style("responses"):
        figure = Figure(figsize=(width, height))
        axes = _place_axes(figure, width, height, (2.3, 0.2, 0.35, 0.5))
        axes.set_ylim(len(rows) - 0.5, -0.5)
        limit = 0.0
        for row, measure in enumerate(rows):
            values = points[measure.name]
            answered = [d for d, owed in values if not owed]
            reference = _days(measure.reference_seconds) if measure.reference_seconds else None
            if answered:
                axes.boxplot(
                    answered,
                    positions=[row],
                    orientation="horizontal",
                    widths=0.55,
                    showfliers=False,
                    patch_artist=True,
                    boxprops={"facecolor": PAPER, "edgecolor": MUTED, "lw": 0.8},
                    whiskerprops={"color": MUTED, "lw": 0.8},
                    capprops={"color": MUTED, "lw": 0.8},
                    medianprops={"color": INK, "lw": 1.4},
                )
            if values:
                # One collection a row, not a call a point: a scatter call costs
                # milliseconds, and a load run has a point for each of 100k cases.
                shown = sample_points(values)
                late = [reference is not None and day > reference for day, _ in shown]
                axes.scatter(
                    [day for day, _ in shown],
                    [row + _jitter(index) for index in range(len(shown))],
                    s=16,
                    zorder=3,
                    facecolors=[
                        "none" if owed else (FAULT if slow else INK)
                        for (_, owed), slow in zip(shown, late, strict=True)
                    ],
                    edgecolors=[FAULT if slow else INK for slow in late],
                    linewidths=0.9,
                    alpha=0.85,
                )
                limit = max(limit, *(day for day, _ in values))
            if reference is not None:
                axes.vlines(
                    reference, row - 0.42, row + 0.42, colors=FAULT, linestyles="--", lw=1.4
                )
                # Left of the line, so the label never runs past the axes.
                axes.text(
                    reference,
                    row - 0.44,
                    f"{measure.reference_label} ",
                    ha="right",
                    va="bottom",
                    color=FAULT,
                    fontsize=7,
                )
                limit = max(limit, reference)
        axes.set_yticks(
            range(len(rows)),
            [f"{m.label}\nfrom {m.counted_from}\n{_tally(m)}" for m in rows],
        )
        axes.set_xlim(0, limit * 1.08 + 0.1)
        axes.set_xlabel("simulated days")
        axes.grid(axis="x", color="#dde3ea", lw=0.6)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        legend = [
            Line2D([], [], ls="", marker="o", color=INK, ms=4, label="answered"),
            Line2D([], [], ls="", marker="o", color=FAULT, ms=4, label="after the deadline"),
            Line2D([], [], ls="", marker="o", mfc="none", color=INK, ms=4, label="still owed"),
            Line2D([], [], ls="--", color=FAULT, lw=1.2, label="deadline"),
        ]
        axes.legend(
            handles=legend,
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),
            ncols=4,
            fontsize=7,
            frameon=False,
            borderaxespad=0.2,
        )
        summary = "; ".join(
            f"{m.label}: median {span(m.median_seconds)}" for m in rows if m.median_seconds
        )
        return _svg(figure, "responses", f"Response times per case. {summary}")
