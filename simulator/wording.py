"""How the simulator speaks to people: times, durations and the procedure's names in words.

One vocabulary for every reader of a run (the report, the terminal, the
console, the letters), so a duration reads `1d 4h` and a state `in
execution` wherever it is shown. `prose` rewrites a sentence the umpire
recorded (a violation's detail, an answer to the controller): the log keeps
what was recorded; only its rendering changes, so old logs read as well as
new ones.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from simulator.protocol import MESSAGE_TYPES, Area, CaseState, RefusalGround

_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60))


def when(value: datetime | None) -> str:
    """A simulated instant to the minute, in UTC: `2026-03-02 11:00`."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def span(seconds: float | None) -> str:
    """A duration to the minute, in at most two units: `1d 4h`, `5h 5m`, `12m`, `0m`.

    Two units are enough to compare a response with a deadline of days or
    hours; exact seconds are in the JSON forms.
    """
    if seconds is None:
        return ""
    rest = round(seconds / 60) * 60
    sign = "-" if rest < 0 else ""
    rest = abs(rest)
    parts: list[str] = []
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        if count or parts:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    shown = [p for p in parts if not p.startswith("0")] or ["0m"]
    return sign + " ".join(shown)


def duration(value: timedelta) -> str:
    return span(value.total_seconds())


# Event types that are not messages, as a person names them.
_EVENT_WORDS = {
    "coop.exercise.started": "exercise started",
    "coop.exercise.ended": "exercise ended",
    "coop.clock.elapsed": "deadline passed",
    "coop.rejection": "submission rejected",
    "coop.note": "controller's note",
    "coop.control": "controller's action",
}

# Art. 2, in the words of the agreement.
AREA_WORDS = {
    Area.PUBLIC_ORDER: "public order and public safety",
    Area.STATE_FACILITIES_AND_SPECIAL_CARGO: "protection of important state facilities and "
    "special cargo",
    Area.TERRORISM_AND_EXTREMISM: "fight against terrorism and extremism",
    Area.ARMS_TRAFFICKING_CONTROL: "state control of arms trafficking",
    Area.FUEL_AND_ENERGY_SAFETY: "safety of fuel and energy facilities",
    Area.SPECIAL_REGIME_FACILITIES: "especially important facilities and special-regime objects",
    Area.PROPERTY_PROTECTION: "protection of property of individuals and legal entities",
    Area.FORCE_SUPPORT: "force support to counter crime",
    Area.SPORTS_AND_CULTURE: "sports and cultural ties",
    Area.HEALTH_RESORT_TREATMENT: "health-resort treatment on a contractual basis",
    Area.CUSTOMS_LEGISLATION: "the proper application of customs legislation",
    Area.CUSTOMS_OFFENCES: "prevention and investigation of operations in breach of customs "
    "legislation",
}

# Art. 5.1, in the words of the agreement.
GROUND_WORDS = {
    RefusalGround.SOVEREIGNTY: "harm to sovereignty",
    RefusalGround.SECURITY: "harm to security",
    RefusalGround.PUBLIC_ORDER: "harm to public order",
    RefusalGround.ESSENTIAL_INTERESTS: "harm to other essential interests of the state",
    RefusalGround.CONTRADICTS_NATIONAL_LAW: "contradicts national law",
    RefusalGround.CONTRADICTS_INTERNATIONAL_OBLIGATIONS: "contradicts international obligations",
}


def words(name: str | None) -> str:
    """A snake_case name of the procedure as words: `in_execution` -> `in execution`."""
    return (name or "").replace("_", " ")


def kind_words(event_type: str) -> str:
    """What an event is: `written request`, `deadline passed`, `controller's note`."""
    if event_type in _EVENT_WORDS:
        return _EVENT_WORDS[event_type]
    return words(event_type.removeprefix("coop.msg."))


def state_words(state: str) -> str:
    return "never opened" if state == "never_opened" else words(state)


def area_words(area: str | None) -> str:
    if area is None:
        return ""
    try:
        return AREA_WORDS[Area(area)]
    except ValueError:
        return words(area)


def ground_words(ground: str) -> str:
    try:
        return GROUND_WORDS[RefusalGround(ground)]
    except ValueError:
        return ground  # outside Art. 5.1: shown as the party wrote it


# -- sentences ------------------------------------------------------------------------

# The snake_case names a sentence of the umpire may hold; only names with an underscore
# need rewriting, and only whole names are (word boundaries: `_` is a word character).
_VOCABULARY = sorted(
    {
        name
        for name in (
            *MESSAGE_TYPES,
            *(s.value for s in CaseState),
            *(a.value for a in Area),
            *(g.value for g in RefusalGround),
            "never_opened",
        )
        if "_" in name
    },
    key=len,
    reverse=True,
)
_SNAKE = re.compile(r"\b(" + "|".join(re.escape(n) for n in _VOCABULARY) + r")\b")
_ISO = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
_ISO_RE = re.compile(_ISO)
# str(timedelta): `3:00:00`, `1 day, 0:00:00`, `12 days, 4:05:06.500000`.
_TIMEDELTA = re.compile(r"(?<![\d:])(?:(-?\d+) days?, )?(\d+):(\d{2}):(\d{2})(?:\.\d+)?(?![\d:])")
_KIND_NAMES = "|".join(
    re.escape(n)
    for n in sorted({*MESSAGE_TYPES, *(words(k) for k in MESSAGE_TYPES)}, key=len, reverse=True)
)
# A message id as the umpire writes it: dotted (`northmark.3`, `gen.urgent.14`), maybe
# quoted, maybe after its type and before its time ("oral request X of 2026-03-02T...").
_MESSAGE_ID = re.compile(
    rf"(?:\b(?:{_KIND_NAMES}) )?'?(?P<id>[A-Za-z0-9_-]+(?:[.:][A-Za-z0-9_-]+)+)'?"
    rf"(?: of (?:{_ISO}))?"
)


@dataclass(frozen=True, slots=True)
class Sent:
    """What a message id stands for in a sentence: its type and when it was committed."""

    kind: str
    time: datetime


def _instant(match: re.Match[str]) -> str:
    text = match[0].replace(" ", "T", 1).replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return match[0]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return when(moment)


def _timedelta(match: re.Match[str]) -> str:
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return span(timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds).total_seconds())


def prose(text: str, messages: Mapping[str, Sent] | None = None) -> str:
    """A sentence of the umpire's in the report's words.

    Message ids it knows become "the written request of 2026-03-02 11:00";
    ISO times become `2026-03-02 11:00`, `str(timedelta)` durations `1d 4h`,
    and snake_case names of types, states, areas and grounds become words.
    """
    if messages:

        def message(match: re.Match[str]) -> str:
            sent = messages.get(match["id"])
            if sent is None:
                return match[0]
            return f"the {words(sent.kind)} of {when(sent.time)}"

        text = _MESSAGE_ID.sub(message, text)
    text = _ISO_RE.sub(_instant, text)
    text = _TIMEDELTA.sub(_timedelta, text)
    return _SNAKE.sub(lambda m: words(m[0]), text)
