"""Delays are fixed, uniform or exponential, sampled in whole seconds from an injected source."""

import random
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from simulator.scenario import Delay, ExponentialDelay, FixedDelay, UniformDelay

DELAY: TypeAdapter[FixedDelay | UniformDelay | ExponentialDelay] = TypeAdapter(Delay)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("4h", FixedDelay(value=timedelta(hours=4))),
        ("0s", FixedDelay(value=timedelta(0))),
        ("2h..6h", UniformDelay(low=timedelta(hours=2), high=timedelta(hours=6))),
        ("2h .. 6h", UniformDelay(low=timedelta(hours=2), high=timedelta(hours=6))),
        ("PT1H..1d", UniformDelay(low=timedelta(hours=1), high=timedelta(days=1))),
        ("3h..3h", UniformDelay(low=timedelta(hours=3), high=timedelta(hours=3))),
        ({"exponential": "4h"}, ExponentialDelay(mean=timedelta(hours=4))),
    ],
)
def test_delays_are_read_as_written(written: object, expected: object) -> None:
    """A duration is a fixed delay, "a..b" a uniform range, {exponential: m} an exponential."""
    assert DELAY.validate_python(written) == expected


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("6h..2h", "runs backwards"),
        ("1h..2h..3h", "is not a range"),
        ("1h..soon", "in the range '1h..soon'"),
        (4, "4 has no unit"),
        ({"exponental": "4h"}, "one key, 'exponential'"),
        ({"exponential": 4}, "must be a duration"),
        ({"kind": "normal"}, "a delay is a duration"),
        ([1, 2], "a delay is a duration"),
    ],
)
def test_bad_delays_are_refused(written: object, message: str) -> None:
    """Anything else is refused with a message that says what a delay looks like."""
    with pytest.raises(ValidationError, match=None) as caught:
        DELAY.validate_python(written)
    assert message in str(caught.value)


def _samples(
    delay: FixedDelay | UniformDelay | ExponentialDelay, seed: int, n: int
) -> list[timedelta]:
    rng = random.Random(seed)
    return [delay.sample(rng) for _ in range(n)]


@pytest.mark.parametrize(
    "delay",
    [
        UniformDelay(low=timedelta(hours=2), high=timedelta(hours=6)),
        ExponentialDelay(mean=timedelta(hours=4)),
    ],
    ids=["uniform", "exponential"],
)
def test_sampling_is_deterministic_for_a_seed(delay: UniformDelay | ExponentialDelay) -> None:
    """The same seed gives the same delays; another seed gives others."""
    assert _samples(delay, 7, 50) == _samples(delay, 7, 50)
    assert _samples(delay, 7, 50) != _samples(delay, 8, 50)


def test_uniform_samples_stay_in_range_and_reach_both_ends() -> None:
    """Uniform samples are whole seconds between low and high, both ends included."""
    delay = UniformDelay(low=timedelta(seconds=10), high=timedelta(seconds=12))
    samples = _samples(delay, 1, 300)
    assert set(samples) == {timedelta(seconds=s) for s in (10, 11, 12)}


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 2**32 - 1))
def test_uniform_samples_never_leave_the_range(a: int, b: int, seed: int) -> None:
    """For any range and seed, a uniform sample is a whole second inside the range."""
    low, high = sorted((a, b))
    delay = UniformDelay(low=timedelta(seconds=low), high=timedelta(seconds=high))
    sample = delay.sample(random.Random(seed))
    assert timedelta(seconds=low) <= sample <= timedelta(seconds=high)
    assert sample.microseconds == 0


def test_exponential_samples_have_about_the_mean() -> None:
    """Exponential samples are whole seconds, never negative, averaging about the mean."""
    samples = _samples(ExponentialDelay(mean=timedelta(hours=4)), 3, 5_000)
    assert all(s >= timedelta(0) and s.microseconds == 0 for s in samples)
    mean_hours = sum(s.total_seconds() for s in samples) / len(samples) / 3600
    assert 3.8 < mean_hours < 4.2


def test_fixed_delay_draws_nothing() -> None:
    """A fixed delay leaves the random source untouched."""
    rng = random.Random(5)
    state = rng.getstate()
    assert FixedDelay(value=timedelta(hours=1)).sample(rng) == timedelta(hours=1)
    assert ExponentialDelay(mean=timedelta(0)).sample(rng) == timedelta(0)
    assert rng.getstate() == state


def test_uniform_delay_draws_once_even_when_fixed() -> None:
    """A zero-width range still draws one number, so draws do not depend on values."""
    rng, twin = random.Random(5), random.Random(5)
    UniformDelay(low=timedelta(hours=3), high=timedelta(hours=3)).sample(rng)
    twin.random()
    assert rng.getstate() == twin.getstate()
