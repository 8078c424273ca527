"""Whole exercises with faults injected, judged by reconciling the log against a calm run.

The example scenario with its seed gives the same log on any broker
(DESIGN invariant 6), so a run disturbed by a fault must end with exactly
the calm run's events: every submission once, none lost, none twice, in the
same order. That comparison, plus an explicit count of each message id,
is the verdict; nothing the broker says is trusted.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.brokers import Broker, EmbeddedBroker, MosquittoBroker, exercise_principals
from simulator.eventlog import Event
from simulator.faults import FaultProxy, ProxiedBroker
from simulator.messaging.topics import Topics
from simulator.run.exercise import Exercise, RunOptions, RunOutcome
from simulator.scenario import Scenario, load_scenario
from tests.runtime.test_exercise import EXAMPLE


def example() -> Scenario:
    return load_scenario(EXAMPLE)


def reconcile(events: list[dict[str, Any]], calm: list[dict[str, Any]]) -> None:
    """Every submission of the calm run exactly once, nothing else, in the same order."""
    ids = Counter(e["id"] for e in events)
    twice = sorted(i for i, n in ids.items() if n > 1)
    assert not twice, f"events recorded more than once: {twice[:5]}"
    messages = Counter(
        e["data"]["message"]["message_id"] for e in events if e["type"].startswith("coop.msg.")
    )
    assert all(n == 1 for n in messages.values()), messages.most_common(3)
    missing = [e["id"] for e in calm if e["id"] not in ids]
    extra = [i for i in ids if i not in {e["id"] for e in calm}]
    assert not missing, f"lost: {missing[:5]}"
    assert not extra, f"not in the calm run: {extra[:5]}"
    for position, (got, want) in enumerate(zip(events, calm, strict=True), start=1):
        assert got == want, f"first difference at position {position}"


def broker_for(kind: str, scenario: Scenario, workdir: Path, **options: Any) -> Broker:
    """A broker (not yet started) with accounts for the scenario's parties."""
    topics = Topics(scenario.exercise)
    accounts = exercise_principals([p.id for p in scenario.parties])
    if kind == "embedded":
        return EmbeddedBroker(topics, accounts, workdir=workdir / "embedded")
    return MosquittoBroker(topics, accounts, workdir=workdir / "mosquitto", **options)


@dataclass
class Drill:
    """A running exercise with its broker and the proxy every principal connects through."""

    exercise: Exercise
    broker: Broker
    proxy: FaultProxy
    committed: int = 0
    _waiters: list[tuple[int, asyncio.Event]] | None = None

    async def committed_at_least(self, count: int) -> None:
        if self.committed >= count:
            return
        event = asyncio.Event()
        assert self._waiters is not None
        self._waiters.append((count, event))
        await event.wait()

    def _count(self, events: Sequence[Event]) -> None:
        self.committed += len(events)
        assert self._waiters is not None
        for count, event in self._waiters:
            if self.committed >= count:
                event.set()


@contextlib.asynccontextmanager
async def drill(
    kind: str, scenario: Scenario, tmp_path: Path, **broker_options: Any
) -> AsyncIterator[Drill]:
    """Start a broker, a proxy in front of it and an exercise that connects through the proxy."""
    broker = broker_for(kind, scenario, tmp_path, **broker_options)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(broker)
        if isinstance(broker, MosquittoBroker):
            # Whatever runs at the end (a test may have restarted it) must go.
            stack.push_async_callback(broker.kill)
        proxy = await stack.enter_async_context(FaultProxy(broker.address))
        run = Drill(exercise=None, broker=broker, proxy=proxy, _waiters=[])  # type: ignore[arg-type]
        exercise = Exercise(
            scenario,
            RunOptions(log=str(tmp_path / "rough.db"), party_timeout_s=90),
            broker=ProxiedBroker(broker, proxy),
            on_commit=run._count,
        )
        run.exercise = await stack.enter_async_context(exercise)
        yield run


async def run_disturbed(
    run: Drill, disturb: Callable[[Drill], Coroutine[Any, Any, object]], within: float = 120
) -> RunOutcome:
    """Run the exercise while `disturb` does its damage; both must finish."""
    async with asyncio.timeout(within), asyncio.TaskGroup() as group:
        disturber = group.create_task(disturb(run), name="drill.disturb")
        outcome = await run.exercise.run()
        await disturber
    return outcome
