"""The console's word on what a party sends amiss: each at first, then how many more.

Every rejected submission is recorded in the log and said to its sender; the
console line is for the controller. A seat flooding the umpire (a script with
a party's credentials: thousands of bad submissions or reports a second) made
that console one warning per message, burying everything else the controller
should read. So each party's first `shown` warnings of a kind in a window of
`window_s` wall seconds are logged one by one, and the rest as one line
(`<kind>_not_shown`, with their count) once the window has passed or the run
ends.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SHOWN = 20
WINDOW_S = 10.0


@dataclass(slots=True)
class _Window:
    start: float
    count: int = 0
    unshown: int = 0
    last: dict[str, Any] | None = None


class Notices:
    def __init__(
        self,
        log: Any,
        *,
        shown: int = SHOWN,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.shown = shown
        self.window_s = window_s
        self.clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}

    def warning(self, event: str, party: str, **fields: Any) -> None:
        """Log `event` about `party`, or count it if the party had its share of the window."""
        now = self.clock()
        key = (event, party)
        window = self._windows.get(key)
        if window is None or now - window.start >= self.window_s:
            if window is not None:
                self._summarize(key, window)
            window = self._windows[key] = _Window(start=now)
        window.count += 1
        if window.count <= self.shown:
            self.log.warning(event, party=party, **fields)
        else:
            window.unshown += 1
            window.last = fields

    def flush_due(self) -> None:
        """Say the count of every window that has passed."""
        if not self._windows:
            return
        now = self.clock()
        for key, window in list(self._windows.items()):
            if now - window.start >= self.window_s:
                self._summarize(key, window)
                del self._windows[key]

    def flush(self) -> None:
        """Say every count still unsaid (the run ends)."""
        for key, window in self._windows.items():
            self._summarize(key, window)
        self._windows.clear()

    def _summarize(self, key: tuple[str, str], window: _Window) -> None:
        if not window.unshown:
            return
        event, party = key
        self.log.warning(
            f"{event}_not_shown",
            party=party,
            count=window.unshown,
            within_s=self.window_s,
            last=window.last,
        )
        window.unshown = 0
