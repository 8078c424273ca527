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

    # The parent log as the fork named it (a path or a URL); "" when not recorded.
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


def read_lineage(metadata: Mapping[str, str]) -> Lineage | None:
    """The lineage a log's metadata records; None for a run that is no fork."""
    position = metadata.get(FORK_POSITION, "")
    if not position.isdigit() or int(position) == 0:
        return None
    generation = metadata.get(GENERATION, "")
    return Lineage(
        parent=metadata.get(PARENT, ""),
        position=int(position),
        generation=int(generation) if generation.isdigit() else 1,
    )


def resumed_positions(value: str | None) -> list[int]:
    """The positions a log's `RESUMED_AT` metadata names; [] for a run never resumed."""
    return [int(p) for p in (value or "").split(",") if p.strip().isdigit()]


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
