"""Who may open which page: one random token for the control view and one per seat.

Tokens come from `secrets` (not the seeded streams: they must never repeat
or be guessable from the scenario's seed) and are compared in constant time.
A seat's token opens that seat only; the control token opens the control
view only. Nothing about a token says which seat it belongs to.
"""

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from simulator.context import secret_token

CONTROL = "control"


@dataclass(frozen=True, slots=True)
class Access:
    """What a request asks to open: the control view, or one party's seat."""

    kind: Literal["control", "seat"]
    party: str | None = None


def _fresh() -> str:
    return secret_token(24)


@dataclass
class Tokens:
    control: str = field(default_factory=_fresh)
    seats: dict[str, str] = field(default_factory=dict)

    @classmethod
    def issue(cls, parties: Iterable[str]) -> "Tokens":
        return cls(seats={party: _fresh() for party in parties})

    def allows(self, access: Access, offered: str | None) -> bool:
        """Whether `offered` opens `access`; every comparison takes the same time."""
        if not offered:
            return False
        if access.kind == CONTROL:
            expected = self.control
        else:
            # An unknown seat still costs a comparison, so timing says nothing of which exist.
            expected = self.seats.get(access.party or "", _fresh())
        return hmac.compare_digest(offered.encode(), expected.encode())
