"""The charts written as SVG: the response chart's boxes are matplotlib's, its ticks round."""

import random

import pytest
from matplotlib import cbook

from simulator.report.charts import box_stats, ticks


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 10, 37, 200])
def test_the_boxes_are_matplotlibs(count: int) -> None:
    """Quartiles, median and whiskers are what matplotlib's boxplot computes for the same times."""
    draw = random.Random(count)
    values = [draw.expovariate(0.5) for _ in range(count)] + [40.0] * (count // 10)

    stats = cbook.boxplot_stats(values)[0]

    expected = (stats["whislo"], stats["q1"], stats["med"], stats["q3"], stats["whishi"])
    assert box_stats(values) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (24.9, [0, 5, 10, 15, 20]),
        (3.3, [0, 1, 2, 3]),
        (0.5, [0, 0.1, 0.2, 0.3, 0.4, 0.5]),
        (130, [0, 25, 50, 75, 100, 125]),
    ],
)
def test_ticks_are_round_and_few(limit: float, expected: list[float]) -> None:
    """At most six steps of 1, 2, 2.5 or 5 times a power of ten, from 0 up to the limit."""
    assert ticks(limit) == pytest.approx(expected)
