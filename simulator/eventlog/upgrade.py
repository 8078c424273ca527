"""Schema versions: pure upgraders that bring old events' data to the current version on load.

An upgrader is registered for one event type and the version it upgrades
from; it takes the data of a version-n event and returns the data of a
version-n+1 event. Loading applies them in a chain until none is registered.
Hashes are always verified on the bytes as stored, before any upgrade; an
upgraded Event keeps the stored ``hash`` and ``prevhash``, which therefore
vouch for the stored original, not for the upgraded data.
"""

import copy
from collections.abc import Callable
from typing import Any

from simulator.eventlog.envelope import Event

Upgrader = Callable[[dict[str, Any]], dict[str, Any]]


class UpgradeRegistry:
    """Upgraders by (event type, version upgraded from)."""

    def __init__(self) -> None:
        self._upgraders: dict[tuple[str, int], Upgrader] = {}

    def add(self, event_type: str, from_version: int, upgrader: Upgrader) -> None:
        """Register ``upgrader`` for ``event_type`` data at ``from_version``."""
        if from_version < 1:
            raise ValueError("schema versions start at 1")
        key = (event_type, from_version)
        if key in self._upgraders:
            raise ValueError(f"an upgrader for {event_type!r} from version {from_version} exists")
        self._upgraders[key] = upgrader

    def register(self, event_type: str, from_version: int) -> Callable[[Upgrader], Upgrader]:
        """Decorator form of add()."""

        def decorate(upgrader: Upgrader) -> Upgrader:
            self.add(event_type, from_version, upgrader)
            return upgrader

        return decorate

    def current_version(self, event_type: str) -> int:
        """The version events of this type come out at: one past the last upgrader, else 1."""
        versions = [version for (kind, version) in self._upgraders if kind == event_type]
        return max(versions, default=0) + 1

    def upgrade(self, event: Event) -> Event:
        """The event with its data at the newest version its chain of upgraders reaches."""
        upgrader = self._upgraders.get((event.type, event.schemaversion))
        if upgrader is None:
            return event
        data = event.data
        version = event.schemaversion
        while upgrader is not None:
            # A deep copy keeps upgraders pure even if one edits its argument.
            data = upgrader(copy.deepcopy(data))
            if not isinstance(data, dict):
                raise TypeError(
                    f"the upgrader of {event.type!r} from version {version} returned "
                    f"{type(data).__name__}, not a JSON object"
                )
            version += 1
            upgrader = self._upgraders.get((event.type, version))
        return event.with_data(data, version)
