"""The runtime's sources of time, randomness and ids: the only module that reads them.

Everything else takes a clock, a wall-clock function or a seeded
`random.Random` as an argument (DESIGN invariant 5), so a run with a virtual
clock and a seed is reproducible, and tests can hand in their own.
"""

import math
import random
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def wall_now() -> datetime:
    """The real time, for the log's `wallclock` field and for reports."""
    return datetime.now(UTC)


def monotonic() -> float:
    return time.monotonic()


def seeded(seed: int, *names: str) -> random.Random:
    """A random stream for one purpose in one run: the same seed and names, the same stream.

    Seeding with a string is stable across processes (it is hashed with
    SHA-512, not with Python's randomised `hash`).
    """
    return random.Random(":".join([str(seed), *names]))


def secret_hex(nbytes: int) -> str:
    """Random hex for ids that must not repeat across runs (log ids, run ids)."""
    return secrets.token_hex(nbytes)


def secret_token(nbytes: int) -> str:
    """A random URL-safe secret: passwords, access tokens."""
    return secrets.token_urlsafe(nbytes)


def secret_bytes(nbytes: int) -> bytes:
    """Random bytes for key material."""
    return secrets.token_bytes(nbytes)


def fresh_rng() -> random.Random:
    """Unseeded randomness, for what must not repeat (reconnect jitter)."""
    return random.Random()


class VirtualClock:
    """Simulated time that moves only when the umpire moves it (rounds, DESIGN invariant 6)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError(f"simulated time cannot go back from {self._now} to {moment}")
        self._now = moment


MIN_SPEED = 0.001
"""The slowest clock a person may ask for: a simulated second every 17 real minutes."""
MAX_SPEED = 10_000_000.0
"""The fastest: about 116 simulated days a real second. Beyond it a second of wall time is
past what a `timedelta` holds within a run's span, and no run needs it."""


def speed_problem(speed: float) -> str | None:
    """Why ``speed`` is no speed for a realtime clock, or None: finite, MIN_SPEED to MAX_SPEED."""
    if not math.isfinite(speed) or not MIN_SPEED <= speed <= MAX_SPEED:
        return (
            f"must be from {MIN_SPEED:g} to {MAX_SPEED:g} simulated seconds a real second, "
            f"not {speed:g}"
        )
    return None


class ScaledClock:
    """Real time times a speed factor, from a simulated start; pause, resume, speed and jump."""

    def __init__(
        self,
        start: datetime,
        *,
        speed: float = 1.0,
        source: Callable[[], float] = monotonic,
    ) -> None:
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed must be finite and positive, not {speed}")
        self._source = source
        self._base_sim = start
        self._base_wall = source()
        self._speed = speed
        self._paused = False
        self._started = False

    def now(self) -> datetime:
        if self._paused:
            return self._base_sim
        elapsed = (self._source() - self._base_wall) * self._speed
        return self._base_sim + timedelta(seconds=elapsed)

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    def _rebase(self) -> None:
        self._base_sim = self.now()
        self._base_wall = self._source()

    def start_now(self) -> datetime:
        """Simulated time runs from now, not from when the clock was made; the time then.

        The run's first moment is when its umpire starts driving, after the broker
        started, every party connected and every subscription is in place: on a
        NATS cluster that took 2-3 s, which at x216,000 was a week of simulated
        time gone before the first inject (a realtime run then ended otherwise than
        its simulated twin). Paused, it stays paused (`resume` starts it then).
        Once: the umpires of a partitioned run share the clock, and time must not
        go back when the second of them starts.
        """
        if not self._started:
            self._started = True
            self._base_wall = self._source()
            # Exactly the start: read back, it would be a few microseconds of wall time
            # later, which at a high speed is simulated seconds.
            return self._base_sim
        return self.now()

    def pause(self) -> None:
        self._rebase()
        self._paused = True

    def resume(self) -> None:
        self._base_wall = self._source()
        self._paused = False

    def set_speed(self, speed: float) -> None:
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"speed must be finite and positive, not {speed}")
        self._rebase()
        self._speed = speed

    def jump_to(self, moment: datetime) -> None:
        """Move simulated time forward to ``moment`` (the next timer, say); never backwards.

        A moment already past leaves the clock where it is: the caller read the time
        a little earlier, and at a high speed even microseconds of wall time move it
        past a moment that was ahead then (a controller's jump to a timer due at once
        had raised here and taken the umpire's receiver down with it).
        """
        self._base_sim = max(moment, self.now())
        self._base_wall = self._source()
