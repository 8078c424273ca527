"""Reconnect backoff: bounded exponential with full jitter from an injected random stream."""

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Bounded exponential backoff with full jitter.

    Attempt n waits a uniform random time in [0, min(maximum, initial * factor**n)]:
    full jitter spreads a crowd of clients that lost the same broker, so they
    do not all come back in the same instant. The attempt counter restarts
    only after a connection has stayed up for `stable_after` seconds, so a
    connection that is dropped right after CONNACK (a take-over by another
    process with the same client id) still backs off.
    """

    initial: float = 0.05
    maximum: float = 5.0
    factor: float = 2.0
    stable_after: float = 10.0

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.maximum and self.factor >= 1 and self.stable_after >= 0):
            raise ValueError(f"inconsistent backoff {self!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        cap = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return rng.uniform(0, cap)
