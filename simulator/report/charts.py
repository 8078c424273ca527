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
from simulator.report.model import CaseReport, ResponseMeasure, ResponseTimes

INK = "#1f3b57"
FAULT = "#b3261e"
MUTED = "#8a96a3"
PAPER = "#eef3f8"

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


def sequence_chart(case: CaseReport) -> str:
    """One lane per party, one arrow per message in log order; faults in red with their rules."""
    lanes = case.lanes
    steps = case.steps
    column = {party: index for index, party in enumerate(lanes)}
    row_height = 0.5
    width = 1.7 + 2.1 * max(len(lanes), 2)
    height = 0.75 + row_height * (len(steps) + 1)
    name = f"sequence-{case.case_id}"
    with _style(name):
        figure = Figure(figsize=(width, height))
        axes = _place_axes(figure, width, height, (1.6, 0.1, 0.1, 0.1))
        last_lane = max(len(lanes) - 1, 1)
        axes.set_xlim(-0.55, last_lane + 0.55)
        axes.set_ylim(len(steps) - 0.45, -1.45)
        for spine in axes.spines.values():
            spine.set_visible(False)
        axes.tick_params(axis="y", length=0, labelsize=7.5)
        axes.set_xticks([])
        axes.set_yticks(
            range(len(steps)), [f"#{s.position}   {when(s.time)}" for s in steps], color=INK
        )
        for party, x in column.items():
            axes.vlines(x, -0.8, len(steps) - 0.4, colors=MUTED, linestyles=(0, (3, 3)), lw=0.9)
            axes.text(
                x,
                -1.0,
                party,
                ha="center",
                va="center",
                fontsize=8.5,
                fontweight="bold",
                color=INK,
                bbox={"boxstyle": "round,pad=0.4", "fc": PAPER, "ec": INK, "lw": 0.8},
            )
        for row, step in enumerate(steps):
            faulty = bool(step.rule_ids)
            colour = FAULT if faulty else INK
            # Lanes hold every sender and recipient, so only a deadline lacks them.
            if step.kind == "deadline" or step.sender not in column or step.recipient not in column:
                centre = last_lane / 2
                axes.hlines(row, -0.4, last_lane + 0.4, colors=FAULT, linestyles="--", lw=1.2)
                axes.text(
                    centre,
                    row - 0.1,
                    "deadline passed",
                    ha="center",
                    va="bottom",
                    color=FAULT,
                    fontsize=8,
                    fontstyle="italic",
                )
            else:
                start, end = column[step.sender], column[step.recipient]
                centre = (start + end) / 2
                axes.annotate(
                    "",
                    xy=(end, row),
                    xytext=(start, row),
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
                    row - 0.08,
                    step.type,
                    ha="center",
                    va="bottom",
                    color=colour,
                    fontsize=8,
                    fontweight="bold" if faulty else "normal",
                )
            if faulty:
                axes.text(
                    centre,
                    row + 0.1,
                    "⚠ " + ", ".join(step.rule_ids),
                    ha="center",
                    va="top",
                    color=FAULT,
                    fontsize=7.5,
                )
        label = (
            f"Sequence chart of case {case.case_id}: {len(steps)} steps between "
            f"{', '.join(lanes)}; {case.violations} violations"
        )
        return _svg(figure, name, label)


def _days(seconds: float) -> float:
    return seconds / _DAY


def _jitter(index: int) -> float:
    """A fixed spread of points within a row, so that equal times do not hide each other."""
    return ((index * 7) % 11 - 5) * 0.045


def _tally(measure: ResponseMeasure, values: Sequence[tuple[float, bool]]) -> str:
    owed = sum(1 for _, still_owed in values if still_owed)
    never = len(measure.unanswered) - owed
    return (
        f"n={measure.samples}"
        + (f", {owed} owed" if owed else "")
        + (f", {never} never answered" if never else "")
    )


def response_chart(cases: Sequence[CaseReport], times: ResponseTimes) -> str | None:
    """Per kind of answer: each case's time as a point, a box of the spread, the deadline as a line.

    None when no case got or owes any answer (nothing to draw).
    """
    points: dict[str, list[tuple[float, bool]]] = {m.name: [] for m in times.measures}
    for case in cases:
        t = case.times
        for name, seconds, owed in (
            ("written_confirmation", t.confirmed_after, False),
            ("acknowledgement", t.acknowledged_after, False),
            ("decision", t.decided_after, False),
            ("results", t.results_after, t.results_pending),
        ):
            if seconds is not None:
                points[name].append((_days(seconds), owed))
    # A kind nobody answered still gets its row: its deadline and tally say so.
    rows: list[ResponseMeasure] = [m for m in times.measures if points[m.name] or m.unanswered]
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
            for index, (day, owed) in enumerate(values):
                late = reference is not None and day > reference
                axes.scatter(
                    [day],
                    [row + _jitter(index)],
                    s=16,
                    zorder=3,
                    facecolors="none" if owed else (FAULT if late else INK),
                    edgecolors=FAULT if late else INK,
                    linewidths=0.9,
                    alpha=0.85,
                )
                limit = max(limit, day)
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
            [f"{m.label}\nfrom {m.counted_from}\n{_tally(m, points[m.name])}" for m in rows],
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
