"""The load pipeline: the umpire's driver when throughput counts more than one message's latency.

Deciding, appending and publishing run as three stages, so the fsync of one
batch overlaps deciding the next and publishing the last. Batch k+1 is
decided while batch k is being appended and batch k-1 published. The
sequencer takes a batch as committed when it is handed on, before it is
durable: a later batch must be decided against it. That is safe because a
failed append ends the run (the TaskGroup), and nothing is published before
it is durable: the publisher only ever sees what the appender has appended.
Case timers are checked once a second rather than after every batch (a load
run has hundreds of thousands of cases), and there are no round markers.
A small batch lingers a little for more (`LINGER_S`, `FULL_BATCH`), no longer
than it takes to fill at the recent rate: the costs of a batch are paid once for
many events at moderate rates too, and a message waits only milliseconds at high
ones. Batches handed on while an append runs are appended together (group commit).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from simulator.context import ScaledClock
from simulator.eventlog import Event
from simulator.umpire.sequencer import Pending

if TYPE_CHECKING:
    from simulator.umpire.core import Umpire, UmpireResult

TIMER_CHECK_S = 1.0
# A batch smaller than FULL_BATCH waits up to LINGER_S after the last hand-on for
# more submissions. At moderate rates every MQTT message had made a batch of its own,
# each paying a transaction, an fsync and the hops between the stages and their tasks,
# so at 1,000 events/s the umpire spent 3-4 times the CPU per event it spends at its
# ceiling (benchmarks/umpire.py --paced). Waiting makes the batches 8 times larger
# there; at high rates a batch fills within a few milliseconds, so a message waits
# about FULL_BATCH / rate (2 ms at 8,000 events/s: `linger_for`).
LINGER_S = 0.02
FULL_BATCH = 16
# Batches between deciding and publishing: enough to overlap the three, few enough
# that a slow log or broker pushes back on deciding at once.
PIPELINE_DEPTH = 2


def linger_for(staged: int, lingered: float, rate: float) -> float:
    """Seconds a batch of `staged` events, lingering `lingered` so far, waits for more.

    The rest of `LINGER_S`, but no longer than the batch takes to fill at `rate`
    (events a second; 0: not known yet).
    """
    rest = LINGER_S - lingered
    if rate > 0:
        rest = min(rest, (FULL_BATCH - staged) / rate)
    return max(rest, 0.0)


def smoothed_rate(rate: float, events: int, seconds: float) -> float:
    """`rate` moved toward how fast a batch of `events` filled in `seconds`.

    Smoothed, so that one burst or one quiet spell does not set the next wait alone.
    """
    latest = events / max(seconds, 1e-3)
    return latest if rate == 0 else 0.7 * rate + 0.3 * latest


class Pipeline:
    """Drives an umpire on a `ScaledClock` as a three-stage pipeline."""

    announces = False  # load generators catch up by position, not by markers
    orders_controls = False

    def __init__(self, umpire: Umpire) -> None:
        self.umpire = umpire
        self._batches: asyncio.Queue[Pending] = asyncio.Queue(maxsize=PIPELINE_DEPTH)
        self._appended: asyncio.Queue[list[Event]] = asyncio.Queue(maxsize=PIPELINE_DEPTH)
        # Submissions a second as the recent batches filled (0: none yet).
        self._rate = 0.0

    async def run(self) -> UmpireResult:
        umpire = self.umpire
        async with asyncio.TaskGroup() as group:
            appender = group.create_task(self._appender(), name="umpire.append")
            publisher = group.create_task(self._publisher(), name="umpire.publish")
            umpire.pipeline = self
            try:
                return await self._serve()
            finally:
                umpire.pipeline = None
                appender.cancel()
                publisher.cancel()

    async def _serve(self) -> UmpireResult:
        umpire = self.umpire
        clock = umpire.clock
        assert isinstance(clock, ScaledClock)
        loop = asyncio.get_running_loop()
        next_timers = loop.time()
        handed_on = -LINGER_S
        while True:
            if umpire.stop_requested:
                return await umpire.finish(umpire.stop_requested)
            now = clock.now()
            if loop.time() >= next_timers:
                umpire.stage_timers(now)
                next_timers = loop.time() + TIMER_CHECK_S
            umpire.stage_arrivals(now)
            staged = len(umpire.sequencer.pending.events)
            lingered = loop.time() - handed_on
            if staged >= FULL_BATCH or (staged and lingered >= LINGER_S):
                await self._hand_on()
                now_s = loop.time()
                self._rate = smoothed_rate(self._rate, staged, now_s - handed_on)
                handed_on = now_s
            elif staged:
                # Not woken by each arrival meanwhile (they are decided together after),
                # but not past when the batch should be full at the rate the last ones
                # filled: sleeping out the whole linger made every message wait 20 ms,
                # and at 4,000 events/s a batch fills in 4.
                await asyncio.sleep(linger_for(staged, lingered, self._rate))
            else:
                await umpire.wait_changed(umpire.settings.tick_s)

    async def _hand_on(self) -> None:
        batch = self.umpire.sequencer.take()
        self.umpire.sequencer.committed(batch)
        # Bounded: when the log or the broker falls behind, deciding waits for them.
        await self._batches.put(batch)

    async def commit(self) -> None:
        """Everything staged, through the pipeline, and wait until it is published."""
        while self.umpire.sequencer.pending.events:
            await self._hand_on()
        await self._batches.join()
        await self._appended.join()

    async def _appender(self) -> None:
        while True:
            batch = await self._batches.get()
            taken = 1
            # Group commit: batches handed on while the last append ran go in one
            # transaction, one fsync for all (the events and their order are the same).
            while not self._batches.empty():
                more = self._batches.get_nowait()
                taken += 1
                batch = Pending(
                    events=batch.events + more.events,
                    cases={**batch.cases, **more.cases},
                    ids={**batch.ids, **more.ids},
                )
            try:
                committed = await self.umpire.append(batch)
                if committed:
                    await self._appended.put(committed)
            finally:
                for _ in range(taken):
                    self._batches.task_done()

    async def _publisher(self) -> None:
        while True:
            committed = await self._appended.get()
            try:
                await self.umpire.after_commit(committed)
            finally:
                self._appended.task_done()
