"""Durations are written "4h", "1d 12h" or ISO 8601, in whole seconds, never negative."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.scenario import MAX_DURATION, DurationError, format_duration, parse_duration

MAX_SECONDS = int(MAX_DURATION.total_seconds())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0s", timedelta(0)),
        ("4h", timedelta(hours=4)),
        ("90m", timedelta(minutes=90)),
        ("1d 4h", timedelta(days=1, hours=4)),
        ("1d4h", timedelta(days=1, hours=4)),
        ("2w", timedelta(weeks=2)),
        ("1w 2d 3h 4m 5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
        ("  30d  ", timedelta(days=30)),
        ("PT4H", timedelta(hours=4)),
        ("P3D", timedelta(days=3)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT1M", timedelta(minutes=1)),
        ("PT0S", timedelta(0)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    """The friendly form and ISO 8601 both parse to the duration they spell."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("4", "a number needs a unit, e.g. '4s' or '4h'"),
        ("4 hours", "is not a duration"),
        ("-1h", "'-1h' is negative; delays and durations cannot be negative"),
        ("1h 1h", "gives the unit 'h' twice"),
        ("1.5h", "is not a duration"),
        ("4H", "is not a duration"),
        ("P1Y", "years or months"),
        ("P1M", "years or months"),
        ("P", "is not a duration"),
        ("PT", "is not a duration"),
        ("P1DT", "is not a duration"),
        ("PT0.5S", "is not a duration"),
        ("99999999999d", "is longer than 36525d"),
        ("36526d", "is longer than 36525d"),
    ],
)
def test_bad_durations_are_refused(text: str, message: str) -> None:
    """Text that is not a whole, non-negative duration is refused with a hint."""
    with pytest.raises(DurationError, match=None) as caught:
        parse_duration(text)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(minutes=90), "1h 30m"),
        (timedelta(days=14), "14d"),
        (timedelta(days=1, seconds=1), "1d 1s"),
    ],
)
def test_durations_format_in_the_friendly_form(value: timedelta, text: str) -> None:
    """Durations are written back as days, hours, minutes and seconds, largest first."""
    assert format_duration(value) == text


def test_formatting_refuses_what_parsing_would_not_give() -> None:
    """Negative or fractional durations cannot be formatted: they cannot be read back."""
    with pytest.raises(ValueError, match="whole, non-negative"):
        format_duration(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="whole, non-negative"):
        format_duration(timedelta(milliseconds=1))


@given(st.integers(min_value=0, max_value=MAX_SECONDS))
def test_format_then_parse_round_trips(seconds: int) -> None:
    """Parsing a formatted duration gives back the same duration."""
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@given(
    st.lists(
        st.tuples(st.sampled_from("wdhms"), st.integers(min_value=0, max_value=1_000)),
        min_size=1,
        max_size=5,
        unique_by=lambda part: part[0],
    ),
    st.sampled_from(["", " ", "  "]),
)
def test_friendly_parts_add_up(parts: list[tuple[str, int]], separator: str) -> None:
    """Any combination of distinct units, in any order, parses to the sum of its parts."""
    seconds = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
    text = separator.join(f"{count}{unit}" for unit, count in parts)
    assert parse_duration(text) == timedelta(seconds=sum(seconds[u] * n for u, n in parts))


@given(
    st.integers(0, 5_000),
    st.integers(0, 100),
    st.integers(0, 100),
    st.integers(0, 100_000),
)
def test_iso_durations_add_up(days: int, hours: int, minutes: int, seconds: int) -> None:
    """An ISO 8601 duration with days and a time part parses to its sum."""
    text = f"P{days}DT{hours}H{minutes}M{seconds}S"
    expected = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    assert parse_duration(text) == expected
