"""A fork's descent: the log it was forked from, how many events it kept, its generation.

A fork (`simulator fork`, `simulator serve --fork`) records these in its log's
metadata, so every reader can say that a run is a fork and of what, from the
log alone.
"""

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

PARENT = "parent"
FORK_POSITION = "fork_position"
GENERATION = "generation"


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
