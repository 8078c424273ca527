"""The console's word on rejected submissions: each one at first, then how many more.

Every rejection is recorded in the log and said to its sender; the console
line is for the controller. A seat flooding the umpire with bad submissions
(a script with a party's credentials: thousands a second) made that console
one warning per submission, burying everything else the controller should
read. So each party's first `shown` rejections in a window of `window_s` wall
seconds are logged one by one, and the rest as one line once the window has
passed (or the run ends), with their count.
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
    last_reason: str = ""


class RejectionNotices:
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
        self._windows: dict[str, _Window] = {}

    def rejected(self, party: str, seq: int | None, reason: str) -> None:
        now = self.clock()
        window = self._windows.get(party)
        if window is None or now - window.start >= self.window_s:
            if window is not None:
                self._summarize(party, window)
            window = self._windows[party] = _Window(start=now)
        window.count += 1
        if window.count <= self.shown:
            self.log.warning("submission_rejected", party=party, seq=seq, reason=reason)
        else:
            window.unshown += 1
            window.last_reason = reason

    def flush_due(self) -> None:
        """Say the count of every window that has passed."""
        if not self._windows:
            return
        now = self.clock()
        for party, window in list(self._windows.items()):
            if now - window.start >= self.window_s:
                self._summarize(party, window)
                del self._windows[party]

    def flush(self) -> None:
        """Say every count still unsaid (the run ends)."""
        for party, window in self._windows.items():
            self._summarize(party, window)
        self._windows.clear()

    def _summarize(self, party: str, window: _Window) -> None:
        if not window.unshown:
            return
        self.log.warning(
            "submission_rejections_not_shown",
            party=party,
            count=window.unshown,
            within_s=self.window_s,
            last_reason=window.last_reason,
            note="each is recorded in the log (coop.rejection) and was said to its sender",
        )
        window.unshown = 0
