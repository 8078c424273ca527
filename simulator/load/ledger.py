"""What became of every case of a load run, in a few bytes a case.

A load run reconciles every submission against the log, so it must know,
for every case a generator started, its path, how many steps were submitted
and which of them their recipient saw. Kept as objects (a record and a set
of seen message ids per case) that cost hundreds of bytes a case in each
generator and again in the parent, and grew without bound with the run:
a 1M-event run is about 250,000 cases. Here each case is its number in its
generator (message ids are `g{generator}-{case}.{step}`) and four bytes:
the path, the steps submitted, a bitmask of the steps its recipient saw and
how it ended. The parent's view of the log is the same shape: a bitmask per
case of the steps the log holds, and a count of those it holds twice.
"""

import base64
from dataclasses import dataclass, field
from typing import Any

from simulator.load.conversation import PATHS

PATH_NAMES = tuple(PATHS)
PATH_INDEX = {name: i for i, name in enumerate(PATH_NAMES)}

# How a case ended (`CaseLedger.state`): still open when the run stopped, done
# (its requesting party saw the last step), or closed by a rejection.
OPEN, COMPLETED, CLOSED = 0, 1, 2


def case_id(generator: int, number: int) -> str:
    return f"g{generator}-{number}"


def parse_message_id(message_id: str) -> tuple[int, int, int] | None:
    """(generator, case number, step) of a load run's message id; None for any other id."""
    head, dot, step = message_id.rpartition(".")
    generator, dash, number = head.partition("-")
    if not (dot and dash and generator[:1] == "g"):
        return None
    try:
        found = int(generator[1:]), int(number), int(step)
    except ValueError:
        return None
    # A step is a bit of a byte (`LogLedger`): a conversation has at most 8 steps. Any
    # other id is no generator's, however like one it looks (`g0-0.9` from a participant
    # had crashed the reconciliation).
    return found if 0 <= found[2] < 8 and found[0] >= 0 and found[1] >= 0 else None


@dataclass
class CaseLedger:
    """One generator's cases, numbered from 0 in the order they were started.

    The arrays grow as cases start (not as scheduled: a long schedule that a busy
    process never reaches costs nothing).
    """

    scheduled: int
    path: bytearray = field(default_factory=bytearray)
    submitted: bytearray = field(default_factory=bytearray)
    recipient_seen: bytearray = field(default_factory=bytearray)
    state: bytearray = field(default_factory=bytearray)

    @property
    def started(self) -> int:
        return len(self.path)

    def start(self, number: int, path: str) -> None:
        if number != len(self.path):
            raise ValueError(f"case {number} started out of order (next is {len(self.path)})")
        self.path.append(PATH_INDEX[path])
        for column in (self.submitted, self.recipient_seen, self.state):
            column.append(0)

    def to_json(self) -> dict[str, Any]:
        # Base64 of the raw bytes: a 250,000-case run ships a megabyte, not a list of tuples.
        return {
            "scheduled": self.scheduled,
            **{
                name: base64.b64encode(getattr(self, name)).decode()
                for name in ("path", "submitted", "recipient_seen", "state")
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CaseLedger":
        ledger = cls(data["scheduled"])
        for name in ("path", "submitted", "recipient_seen", "state"):
            setattr(ledger, name, bytearray(base64.b64decode(data[name])))
        return ledger


@dataclass
class LogLedger:
    """The load run's messages the log holds: per generator, a bitmask of steps per case."""

    sizes: dict[int, int]
    committed: dict[int, bytearray] = field(init=False)
    duplicated: int = 0
    # Message ids the log holds that no generator of this run sent (none, unless a bug).
    foreign: int = 0

    def __post_init__(self) -> None:
        self.committed = {g: bytearray(n) for g, n in self.sizes.items()}

    def add(self, message_id: str) -> None:
        found = parse_message_id(message_id)
        masks = self.committed.get(found[0]) if found is not None else None
        if found is None or masks is None or not 0 <= found[1] < len(masks):
            self.foreign += 1
            return
        _, number, step = found
        bit = 1 << step
        if masks[number] & bit:
            self.duplicated += 1
        else:
            masks[number] |= bit

    def total(self) -> int:
        return sum(mask.bit_count() for masks in self.committed.values() for mask in masks)


__all__ = [
    "CLOSED",
    "COMPLETED",
    "OPEN",
    "PATH_INDEX",
    "PATH_NAMES",
    "CaseLedger",
    "LogLedger",
    "case_id",
    "parse_message_id",
]
