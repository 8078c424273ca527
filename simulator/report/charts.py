"""The report's response-time chart, drawn with matplotlib and returned as SVG text to inline.

(The sequence charts, a fixed layout with no scales, are written directly: sequence.py.)

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

from simulator.report.formatting import span
from simulator.report.model import CaseReport, ResponseMeasure, ResponseTimes
from simulator.report.sequence import FAULT, INK, MUTED, PAPER

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
