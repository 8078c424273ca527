"""A run's history: a fork's descent (its parent log, the events it kept, its generation),
and where a run was resumed.

A fork (`simulator fork`, `simulator serve --fork`) records these in its log's
metadata, so every reader can say that a run is a fork and of what, from the
log alone. A resumed run (`simulator resume`) records the position it went on
from, so that `replay --check` knows why its count of rounds is its own.
"""

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

PARENT = "parent"
FORK_POSITION = "fork_position"
GENERATION = "generation"
# The positions a run was resumed from, comma-separated, oldest first.
RESUMED_AT = "resumed_at"


class Lineage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # The parent log: a file's full path (as the fork named it before 2026-12-07), or a
    # URL; "" when not recorded.
    parent: str
    # The fork keeps the parent's first `position` events byte for byte.
    position: int
    # 1 for a fork of an original run, 2 for a fork of a fork, ...
    generation: int

    def sentence(self) -> str:
        """`a fork (generation 1) of runs/a.db, from its first 12 events`."""
        parent = self.parent or "a log it does not name"
        return (
            f"a fork (generation {self.generation}) of {parent}, "
            f"from its first {self.position} events"
        )


def whole_number(text: str) -> int | None:
    """A whole number in ASCII digits, or None (`str.isdigit` also passes `²`, which `int`
    refuses: metadata edited so had made `log show` and `report` tracebacks)."""
    return int(text) if text.isascii() and text.isdigit() else None


def read_lineage(metadata: Mapping[str, str]) -> Lineage | None:
    """The lineage a log's metadata records; None for a run that is no fork."""
    position = whole_number(metadata.get(FORK_POSITION, "").strip())
    if not position:
        return None
    return Lineage(
        parent=metadata.get(PARENT, ""),
        position=position,
        generation=whole_number(metadata.get(GENERATION, "").strip()) or 1,
    )


def resumed_positions(value: str | None) -> list[int]:
    """The positions a log's `RESUMED_AT` metadata names; [] for a run never resumed."""
    return [n for p in (value or "").split(",") if (n := whole_number(p.strip())) is not None]


def with_resumption(value: str | None, position: int) -> str:
    """`RESUMED_AT` once the run is resumed again, from `position`."""
    return ",".join(str(p) for p in [*resumed_positions(value), position])


def history(lineage: Lineage | None, resumed_at: Sequence[int]) -> str:
    """Where a run came from, as a report says it: an original run or a fork's descent, and
    the events it was resumed after, if it was interrupted (a report had not said so)."""
    said = lineage.sentence() if lineage is not None else "an original run"
    if resumed_at:
        where = ", ".join(str(p) for p in resumed_at)
        times = "once" if len(resumed_at) == 1 else f"{len(resumed_at)} times"
        said += f", interrupted and resumed {times} (after event {where})"
    return said
