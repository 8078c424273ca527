"""A case's sequence chart, written as SVG text to inline in a page.

A lane per party, an arrow per message in log order, the rules it broke under
it in red, the controller's notes and actions in purple. The layout is fixed
(rows of set heights, lanes at set distances), so nothing needs a plotting
library: the chart is written element by element, about fifty times faster
than matplotlib drew it (25 ms a chart, most of a small log's report), to the
same geometry (units are points, 72 to the inch). Text stays text, in the
font the page names first; the same case gives the same bytes.
"""

from html import escape

from simulator.report.model import CaseReport, CaseStep, ControllerRow
from simulator.wording import when, words

# The report's palette, the response chart's too.
INK = "#1f3b57"
FAULT = "#b3261e"
MUTED = "#8a96a3"
PAPER = "#eef3f8"
DESK = "#5b3f8c"

_INCH = 72.0
_STEP_HEIGHT = 0.5
_RULE_HEIGHT = 0.2  # one more line under the arrow per rule after the first
_NOTE_CHARS = 70
# Margins in inches: the left one holds the positions and times.
_LEFT, _RIGHT, _TOP, _BOTTOM = 1.6, 0.1, 0.1, 0.1
_HEADS = 0.95  # the lanes' heads, above the first row
_FONT = "font-family:'DejaVu Sans',sans-serif"
# Where a line of text sits against the point it is placed at, in ems: its
# baseline below a vertical centre, above a bottom, below a top (DejaVu's metrics).
_CENTRE, _DESCENT, _ASCENT = 0.35, 0.24, 0.76
# DejaVu Sans Bold's mean advance in ems, to size the box around a lane's name.
_BOLD_ADVANCE = 0.65
_ARROW_LENGTH, _ARROW_HALF_WIDTH = 4.4, 2.2  # matplotlib's "-|>" at mutation_scale 11

_Row = CaseStep | ControllerRow


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


def _n(value: float) -> str:
    """A coordinate, to a hundredth of a point."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


class _Canvas:
    """SVG elements in data units: x in lanes, y in inches down from the first row."""

    def __init__(self, lanes: int, width: float) -> None:
        self.last = max(lanes - 1, 1)
        self.left = _LEFT * _INCH
        self.span = (width - _LEFT - _RIGHT) * _INCH
        self.parts: list[str] = []

    def x(self, lane: float) -> float:
        return self.left + (lane + 0.55) / (self.last + 1.1) * self.span

    @staticmethod
    def y(inches: float) -> float:
        return (_TOP + _HEADS + inches) * _INCH

    def line(self, x1: float, y1: float, x2: float, y2: float, style: str) -> None:
        self.parts.append(
            f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" style="{style}"/>'
        )

    def text(self, x: float, y: float, text: str, size: float, style: str, anchor: str) -> None:
        self.parts.append(
            f'<text x="{_n(x)}" y="{_n(y)}" style="font-size:{size}px;{_FONT};'
            f'text-anchor:{anchor};{style}">{escape(text)}</text>'
        )


def sequence_chart(case: CaseReport) -> str:
    """One lane per party, one arrow per message in log order; faults in red with their rules.

    The rules a message broke go under its arrow one a line, so the label fits between
    the lanes however many there are; the controller's notes and actions about the case
    are rows of their own, in purple.
    """
    lanes = case.lanes
    rows = _rows(case)
    column = {party: index for index, party in enumerate(lanes)}
    tops: list[float] = []
    y = 0.0
    for row in rows:
        tops.append(y)
        y += _row_height(row)
    body = max(y, _STEP_HEIGHT)
    width = 1.7 + 2.1 * max(len(lanes), 2)
    height = _TOP + _HEADS + body + _BOTTOM
    canvas = _Canvas(len(lanes), width)
    last = canvas.last
    for top, row in zip(tops, rows, strict=True):
        canvas.text(
            canvas.left - 3.5,
            canvas.y(top + 0.25) + _CENTRE * 7.5,
            f"#{row.position}   {when(row.time)}",
            7.5,
            f"fill:{INK}",
            "end",
        )
    for party, lane in column.items():
        x = canvas.x(lane)
        canvas.line(
            x,
            canvas.y(-0.6),
            x,
            canvas.y(body),
            f"stroke:{MUTED};stroke-width:0.9;stroke-dasharray:2.7,2.7",
        )
        box_width = len(party) * 8.5 * _BOLD_ADVANCE + 6.8
        box_height = 8.5 * 1.17 + 6.8
        centre = canvas.y(-0.75)
        canvas.parts.append(
            f'<rect x="{_n(x - box_width / 2)}" y="{_n(centre - box_height / 2)}" '
            f'width="{_n(box_width)}" height="{_n(box_height)}" rx="3.4" '
            f'style="fill:{PAPER};stroke:{INK};stroke-width:0.8"/>'
        )
        canvas.text(x, centre + _CENTRE * 8.5, party, 8.5, f"font-weight:bold;fill:{INK}", "middle")
    for top, row in zip(tops, rows, strict=True):
        line = canvas.y(top + 0.25)
        above = canvas.y(top + 0.25 - 0.04)
        centre = canvas.x(last / 2)
        if isinstance(row, ControllerRow):
            canvas.line(
                canvas.x(-0.4),
                line,
                canvas.x(last + 0.4),
                line,
                f"stroke:{DESK};stroke-width:1.2;stroke-dasharray:1.2,1.98",
            )
            canvas.text(
                centre,
                above - _DESCENT * 7.5,
                _desk_label(row),
                7.5,
                f"font-style:italic;fill:{DESK}",
                "middle",
            )
            continue
        faulty = bool(row.rule_ids)
        colour = FAULT if faulty else INK
        # Lanes hold every sender and recipient, so only a deadline lacks them.
        if row.kind == "deadline" or row.sender not in column or row.recipient not in column:
            canvas.line(
                canvas.x(-0.4),
                line,
                canvas.x(last + 0.4),
                line,
                f"stroke:{FAULT};stroke-width:1.2;stroke-dasharray:4.44,1.92",
            )
            canvas.text(
                centre,
                above - _DESCENT * 8,
                "deadline passed",
                8,
                f"font-style:italic;fill:{FAULT}",
                "middle",
            )
        else:
            start, end = canvas.x(column[row.sender]), canvas.x(column[row.recipient])
            centre = (start + end) / 2
            way = 1.0 if end >= start else -1.0
            base = end - way * _ARROW_LENGTH
            canvas.line(
                start, line, base, line, f"stroke:{colour};stroke-width:{1.6 if faulty else 1.2}"
            )
            canvas.parts.append(
                f'<polygon points="{_n(end)},{_n(line)} {_n(base)},{_n(line - _ARROW_HALF_WIDTH)} '
                f'{_n(base)},{_n(line + _ARROW_HALF_WIDTH)}" style="fill:{colour};stroke:{colour};'
                'stroke-width:1"/>'
            )
            canvas.text(
                centre,
                above - _DESCENT * 8,
                words(row.type),
                8,
                f"{'font-weight:bold;' if faulty else ''}fill:{colour}",
                "middle",
            )
        for index, rule in enumerate(row.rule_ids):
            canvas.text(
                centre,
                canvas.y(top + 0.25 + 0.05 + _RULE_HEIGHT * index) + _ASCENT * 7.5,
                "⚠ " + rule,
                7.5,
                f"fill:{FAULT}",
                "middle",
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
    w, h = _n(width * _INCH), _n(height * _INCH)
    return (
        f'<svg role="img" aria-label="{escape(label)}" width="{w}pt" height="{h}pt" '
        f'viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg" version="1.1">'
        f'<rect width="{w}" height="{h}" style="fill:#ffffff"/>{"".join(canvas.parts)}</svg>'
    )
