"""Durations as scenario authors write them: "4h", "1d 12h", "90m", or ISO 8601 "PT4H".

A scenario's clock counts whole seconds: a duration with a fraction of a
second is refused rather than rounded, so that formatting a parsed duration
gives back the same value and a scenario dumped to YAML reloads unchanged.
Years and months are refused because their length depends on the calendar.
"""

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

# Long enough for any exercise; short enough that a start date plus a
# duration (or a sampled delay of many times its mean) stays a valid datetime.
MAX_DURATION = timedelta(days=36_525)

_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
# Units in the order format_duration writes them; weeks are left out so that
# "14d" reads as the number of days exercise planners count in.
_FORMAT_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))

_FRIENDLY = re.compile(r"(?:[0-9]+[ \t]*[smhdw][ \t]*)+")
_FRIENDLY_PART = re.compile(r"([0-9]+)[ \t]*([smhdw])")
_ISO = re.compile(
    r"P(?:(?P<w>[0-9]+)W)?(?:(?P<d>[0-9]+)D)?"
    r"(?:T(?=[0-9])(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?(?:(?P<s>[0-9]+)S)?)?"
)
_ISO_CALENDAR = re.compile(r"P(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+[WD])?(?:T.*)?")
# More digits than this cannot be a duration below MAX_DURATION in any unit,
# and refusing them early keeps int() away from huge digit strings.
_MAX_DIGITS = 10

FORMAT_HINT = (
    "write a number and a unit (s, m, h, d, w), combinable like '1d 12h', "
    "or ISO 8601 like 'PT4H' or 'P3D'"
)
# The same two forms for editors, in the ECMAScript syntax JSON Schema uses.
DURATION_ATOM = (
    r"(?:(?:[0-9]+[ \t]*[smhdw][ \t]*)+"
    r"|P(?=[0-9]|T[0-9])(?:[0-9]+W)?(?:[0-9]+D)?(?:T(?=[0-9])(?:[0-9]+H)?(?:[0-9]+M)?(?:[0-9]+S)?)?)"
)
DURATION_PATTERN = rf"^\s*{DURATION_ATOM}\s*$"


class DurationError(ValueError):
    """A text that is not a duration a scenario accepts."""


def parse_duration(text: str) -> timedelta:
    """Parse "4h", "1d 12h", "0s" or ISO 8601 "PT4H"; raise DurationError otherwise."""
    stripped = text.strip()
    if not stripped:
        raise DurationError(f"an empty text is not a duration: {FORMAT_HINT}")
    if stripped.startswith("-"):
        raise DurationError(f"{text!r} is negative; delays and durations cannot be negative")
    if stripped.startswith("P"):
        return _check(_parse_iso(stripped, text), text)
    if _FRIENDLY.fullmatch(stripped) is None:
        hint = FORMAT_HINT
        if stripped.isdigit():
            hint = f"a number needs a unit, e.g. '{stripped}s' or '{stripped}h'"
        raise DurationError(f"{text!r} is not a duration: {hint}")
    seconds = 0
    seen: set[str] = set()
    for digits, unit in _FRIENDLY_PART.findall(stripped):
        if unit in seen:
            raise DurationError(f"{text!r} gives the unit {unit!r} twice")
        seen.add(unit)
        seconds += _number(digits, text) * _UNIT_SECONDS[unit]
    return _check(seconds, text)


def _parse_iso(iso: str, text: str) -> int:
    match = _ISO.fullmatch(iso)
    if match is None or not any(match.groupdict().values()):
        if _ISO_CALENDAR.fullmatch(iso) and ("Y" in iso or "M" in iso.split("T", maxsplit=1)[0]):
            raise DurationError(
                f"{text!r} counts years or months, whose length depends on the calendar: "
                "give days instead"
            )
        raise DurationError(f"{text!r} is not a duration: {FORMAT_HINT}")
    return sum(
        _number(digits, text) * _UNIT_SECONDS[unit.lower()]
        for unit, digits in match.groupdict().items()
        if digits is not None
    )


def _number(digits: str, text: str) -> int:
    if len(digits) > _MAX_DIGITS:
        raise DurationError(f"{text!r} is longer than {format_duration(MAX_DURATION)}")
    return int(digits)


def _check(seconds: int, text: str) -> timedelta:
    if seconds > MAX_DURATION.total_seconds():
        raise DurationError(f"{text!r} is longer than {format_duration(MAX_DURATION)}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The friendly form parse_duration reads back: "1d 4h", "90m" is written "1h 30m", "0s"."""
    if value < timedelta(0) or value.microseconds:
        raise ValueError(f"{value!r} is not a whole, non-negative number of seconds")
    rest = value.days * 86_400 + value.seconds
    parts = []
    for unit, size in _FORMAT_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


def to_timedelta(value: Any) -> timedelta:
    """Validate a duration from YAML (text) or from code (timedelta)."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise DurationError("a duration cannot be negative")
        if value.microseconds:
            raise DurationError("durations are counted in whole seconds")
        if value > MAX_DURATION:
            raise DurationError(f"a duration is at most {format_duration(MAX_DURATION)}")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise DurationError(
            f"{value!r} has no unit: write it as text with a unit, e.g. '{value}s' or '{value}h'"
        )
    raise DurationError(f"a duration is text like '4h' or 'PT4H', not {type(value).__name__}")


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise DurationError("must be longer than 0s")
    return value


_SCHEMA = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    "description": "A duration: '4h', '1d 12h', '90m', '0s', or ISO 8601 'PT4H', 'P3D'.",
    "examples": ["4h", "1d 12h", "P3D"],
}

Duration = Annotated[
    timedelta,
    BeforeValidator(to_timedelta),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(_SCHEMA),
]
"""A non-negative whole number of seconds, written like "4h" or "PT4H"."""

PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
"""A Duration longer than zero."""
