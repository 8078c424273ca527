"""Delays: how long a party waits before it acts, fixed or drawn from a seeded random source.

Authors write a delay as a duration ("4h"), a uniform range ("2h..6h") or
an exponential with a given mean (`{exponential: 4h}`). Sampling takes the
random source as an argument: the runtime owns the one seeded
`random.Random` of a run, so the same seed gives the same delays.
Samples are whole seconds, like every duration in a scenario.
"""

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    PlainSerializer,
    Tag,
    WithJsonSchema,
    model_validator,
)

from simulator.scenario.duration import (
    DURATION_ATOM,
    DURATION_PATTERN,
    MAX_DURATION,
    Duration,
    DurationError,
    format_duration,
    parse_duration,
)


class RandomSource(Protocol):
    """What sampling needs of a random source; `random.Random` is one."""

    def uniform(self, a: float, b: float) -> float: ...

    def expovariate(self, lambd: float) -> float: ...


class FixedDelay(BaseModel):
    """Always the same delay. Sampling draws nothing from the random source."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["fixed"] = "fixed"
    value: Duration

    def sample(self, rng: RandomSource) -> timedelta:
        return self.value

    @property
    def least(self) -> timedelta:
        """The shortest delay a sample can give."""
        return self.value

    @property
    def text(self) -> str:
        return format_duration(self.value)


class UniformDelay(BaseModel):
    """A whole number of seconds between `low` and `high` inclusive, each equally likely.

    Sampling draws exactly one number from the random source, also when
    `low == high`, so that how many draws a run makes does not depend on
    the values in the scenario.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["uniform"] = "uniform"
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> "UniformDelay":
        if self.low > self.high:
            raise ValueError(f"the range {self.text} runs backwards: write the shorter delay first")
        return self

    def sample(self, rng: RandomSource) -> timedelta:
        span = int((self.high - self.low).total_seconds())
        # uniform(0, span + 1) floored gives each whole second the same weight;
        # min() guards the one value, span + 1, that uniform() may return.
        offset = min(int(rng.uniform(0, span + 1)), span)
        return self.low + timedelta(seconds=offset)

    @property
    def least(self) -> timedelta:
        """The shortest delay a sample can give."""
        return self.low

    @property
    def text(self) -> str:
        return f"{format_duration(self.low)}..{format_duration(self.high)}"


class ExponentialDelay(BaseModel):
    """A delay drawn from an exponential distribution with this mean, rounded to seconds.

    Sampling draws one number, except for a zero mean, which always gives 0s.
    Draws are capped at MAX_DURATION so that no sample overflows a datetime.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["exponential"] = "exponential"
    mean: Duration

    def sample(self, rng: RandomSource) -> timedelta:
        mean = self.mean.total_seconds()
        if mean == 0:
            return timedelta(0)
        seconds = min(round(rng.expovariate(1 / mean)), int(MAX_DURATION.total_seconds()))
        return timedelta(seconds=seconds)

    @property
    def least(self) -> timedelta:
        """The shortest delay a sample can give: a draw may round to nothing."""
        return timedelta(0)

    @property
    def text(self) -> str:
        return f"{{exponential: {format_duration(self.mean)}}}"


def _from_yaml(value: Any) -> Any:
    """Turn the forms authors write into delay models; leave the models' own forms alone."""
    # Errors are raised here as plain DurationErrors rather than by building
    # the models, so that they point at the delay itself, not at a union tag.
    if isinstance(value, str):
        low_text, sep, high_text = value.partition("..")
        if not sep:
            return {"kind": "fixed", "value": parse_duration(value)}
        if ".." in high_text:
            raise DurationError(
                f"{value!r} is not a range: write 'shortest..longest', e.g. '2h..6h'"
            )
        try:
            low, high = parse_duration(low_text), parse_duration(high_text)
        except DurationError as error:
            raise DurationError(f"in the range {value!r}: {error}") from None
        if low > high:
            raise DurationError(
                f"the range {value!r} runs backwards: write the shorter delay first"
            )
        return {"kind": "uniform", "low": low, "high": high}
    if isinstance(value, timedelta):
        return {"kind": "fixed", "value": value}
    if isinstance(value, Mapping) and "kind" not in value:
        if set(value) != {"exponential"}:
            keys = ", ".join(repr(k) for k in value)
            raise DurationError(
                f"a delay written as a mapping has one key, 'exponential' (its mean); "
                f"found {keys or 'none'}"
            )
        mean = value["exponential"]
        if not isinstance(mean, str):
            raise DurationError(f"the exponential mean {mean!r} must be a duration like '4h'")
        return {"kind": "exponential", "mean": parse_duration(mean)}
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise DurationError(
            f"{value!r} has no unit: write it with one, e.g. '{value}s' or '{value}h'"
        )
    return value


# Union tags, as they appear in error locations; bracketed so that no key in
# a scenario can be mistaken for one.
_TAGS = {"fixed": "<fixed>", "uniform": "<uniform>", "exponential": "<exponential>"}
DELAY_TAGS = frozenset(_TAGS.values())


def _kind(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, Mapping) else getattr(value, "kind", None)
    return _TAGS.get(kind) if isinstance(kind, str) else None


def _to_yaml(value: FixedDelay | UniformDelay | ExponentialDelay) -> str | dict[str, str]:
    if isinstance(value, ExponentialDelay):
        return {"exponential": format_duration(value.mean)}
    return value.text


_DELAY_PATTERN = rf"^\s*{DURATION_ATOM}\s*(?:\.\.\s*{DURATION_ATOM}\s*)?$"
_SCHEMA: dict[str, Any] = {
    "description": (
        "A delay: a fixed duration ('4h'), a uniform range ('2h..6h', both ends "
        "included) or an exponential with a mean ({exponential: 4h})."
    ),
    "oneOf": [
        {"type": "string", "pattern": _DELAY_PATTERN, "examples": ["4h", "2h..6h", "PT4H"]},
        {
            "type": "object",
            "properties": {"exponential": {"type": "string", "pattern": DURATION_PATTERN}},
            "required": ["exponential"],
            "additionalProperties": False,
        },
    ],
}

Delay = Annotated[
    Annotated[FixedDelay, Tag(_TAGS["fixed"])]
    | Annotated[UniformDelay, Tag(_TAGS["uniform"])]
    | Annotated[ExponentialDelay, Tag(_TAGS["exponential"])],
    Discriminator(
        _kind,
        custom_error_type="delay",
        custom_error_message=(
            "a delay is a duration ('4h'), a range ('2h..6h') or {exponential: 4h}"
        ),
    ),
    BeforeValidator(_from_yaml),
    PlainSerializer(_to_yaml, when_used="json"),
    WithJsonSchema(_SCHEMA),
]
"""FixedDelay | UniformDelay | ExponentialDelay, each with `sample(rng) -> timedelta`."""

NO_DELAY = FixedDelay(value=timedelta(0))
