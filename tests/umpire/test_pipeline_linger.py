"""How long the load pipeline lets a small batch wait for more (`linger_for`, `smoothed_rate`)."""

import pytest

from simulator.umpire.pipeline import FULL_BATCH, LINGER_S, linger_for, smoothed_rate


def test_with_no_rate_known_a_batch_waits_out_the_linger() -> None:
    assert linger_for(1, 0.0, 0.0) == LINGER_S
    assert linger_for(1, LINGER_S / 4, 0.0) == pytest.approx(LINGER_S * 3 / 4)


def test_a_batch_waits_no_longer_than_it_takes_to_fill_at_the_rate() -> None:
    """At 4,000 events a second, 4 staged of 16 wait 3 ms, not the whole linger."""
    assert linger_for(4, 0.0, 4000.0) == pytest.approx((FULL_BATCH - 4) / 4000.0)
    # A slow rate fills later than the linger: the linger bounds the wait.
    assert linger_for(4, 0.0, 10.0) == LINGER_S


def test_the_wait_is_never_negative() -> None:
    assert linger_for(FULL_BATCH, 0.0, 4000.0) == 0.0
    assert linger_for(1, LINGER_S * 2, 0.0) == 0.0


def test_the_rate_follows_how_fast_batches_filled_smoothed() -> None:
    assert smoothed_rate(0.0, 16, 0.004) == pytest.approx(4000.0)
    # One quiet batch moves the estimate part of the way, not all of it.
    after_quiet = smoothed_rate(4000.0, 2, 0.02)
    assert 100.0 < after_quiet < 4000.0
    assert after_quiet == pytest.approx(0.7 * 4000.0 + 0.3 * 100.0)
    # A batch handed on at once (no time between) counts as filled in a millisecond.
    assert smoothed_rate(0.0, 3, 0.0) == pytest.approx(3000.0)
