"""`simulator load --find-max`: the highest offered rate a run holds, found by a ramp.

Open loop far past capacity measures only a backlog, so the ceiling is found
from below: short runs at rates going up by a factor while each one holds
(every case offered and finished, nothing lost, message p99 under a bound).
The highest rate held is the answer; the first one not held says why.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from simulator.errors import InputError
from simulator.load.interrupt import Interruption
from simulator.load.report import LoadReport
from simulator.load.runner import LoadOptions, run_load

DEFAULT_FACTOR = 1.3
DEFAULT_STEPS = 8
DEFAULT_P99_BOUND_MS = 1000.0


@dataclass(frozen=True)
class RampStep:
    """One run of the ramp: what was offered, what it carried, and whether it held."""

    offered_cases_per_s: float
    offered_events_per_s: float
    committed_events_per_s: float
    committed_events_per_s_sustained: float
    p99_ms: float
    cases_completed: int
    cases_scheduled: int
    verdict: str
    held: bool
    why: str
    # The cores this machine's processes kept busy, and what ran out of CPU first, if
    # anything (`report.cpu_use`): why a step did not hold, when its CPU was the limit.
    cores_busy: float | None = None
    cpu_bound: str | None = None
    cpu_why: str = ""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Ceiling:
    """The ramp's steps, and the highest one held (None: not even the first)."""

    p99_bound_ms: float
    steps: list[RampStep] = field(default_factory=list)
    # The full figures of the highest step held, or of the first step when none held.
    figures: dict[str, Any] | None = None

    @property
    def best(self) -> RampStep | None:
        held = [s for s in self.steps if s.held]
        return max(held, key=lambda s: s.offered_cases_per_s) if held else None

    @property
    def lost(self) -> bool:
        return any(s.verdict == "lost" for s in self.steps)

    @property
    def verdict(self) -> str:
        """failed, lost, interrupted, saturated (no rate held) or ok, as a single run's
        (`VERDICTS`). Interrupted: the ramp was stopped; the highest rate held so far
        stands in the figures."""
        verdicts = {s.verdict for s in self.steps}
        for worst in ("failed", "lost", "interrupted"):
            if worst in verdicts:
                return worst
        return "ok" if self.best is not None else "saturated"

    def as_json(self) -> dict[str, Any]:
        best = self.best
        return {
            "p99_bound_ms": self.p99_bound_ms,
            "held": best is not None,
            "max_offered_cases_per_s": best.offered_cases_per_s if best else None,
            "max_offered_events_per_s": best.offered_events_per_s if best else None,
            "max_committed_events_per_s": best.committed_events_per_s if best else None,
            "max_committed_events_per_s_sustained": (
                best.committed_events_per_s_sustained if best else None
            ),
            "steps": [s.as_json() for s in self.steps],
            "verdict": self.verdict,
        }


def ramp_step(report: LoadReport, p99_bound_ms: float, messages_per_case: float) -> RampStep:
    """A run's place in the ramp: held when it was carried whole with p99 under the bound."""
    data = report.as_json()
    p99 = data["latency_ms"]["p99"]
    verdict = report.verdict
    if verdict == "failed":
        why = f"failed: {report.failure}"
    elif verdict == "lost":
        why = (
            f"lost {report.lost}, duplicated {report.duplicated}, undelivered {report.undelivered}"
        )
    elif verdict == "interrupted":
        why = "interrupted (Ctrl-C or SIGTERM) before its schedule's end"
    elif verdict == "saturated":
        why = (
            f"saturated: {report.cases_incomplete} cases unfinished, "
            f"{report.cases_not_started} never started"
        )
    elif p99 > p99_bound_ms:
        why = f"p99 {p99:g} ms over the bound of {p99_bound_ms:g} ms"
    else:
        why = ""
    use = data.get("cpu_use") or {}
    return RampStep(
        offered_cases_per_s=report.offered_cases_per_s,
        offered_events_per_s=round(report.offered_cases_per_s * messages_per_case, 1),
        committed_events_per_s=data["committed_events_per_s"],
        committed_events_per_s_sustained=data["committed_events_per_s_sustained"],
        p99_ms=p99,
        cases_completed=report.cases_completed,
        cases_scheduled=report.cases_scheduled,
        verdict=verdict,
        held=not why,
        why=why,
        cores_busy=use.get("cores_busy_here"),
        cpu_bound=use.get("bound"),
        cpu_why=use.get("why", ""),
    )


Run = Callable[[LoadOptions], Awaitable[LoadReport]]


async def find_max(
    options: LoadOptions,
    *,
    p99_bound_ms: float = DEFAULT_P99_BOUND_MS,
    factor: float = DEFAULT_FACTOR,
    steps: int = DEFAULT_STEPS,
    on_step: Callable[[RampStep], None] | None = None,
    run: Run = run_load,
    interruption: Interruption | None = None,
) -> Ceiling:
    """Runs of `options.duration_s` from `options.rate` up by `factor` until one does not hold.

    Each step is a whole load run (its own broker, umpire and log), so one
    step's backlog never weighs on the next. `interruption`: the person running
    it stopped it (`simulator.load.interrupt`; `run` hears of it too): no step
    starts after that, and the one under way drains and ends the ramp.
    """
    if p99_bound_ms <= 0:
        raise InputError(f"--p99-bound must be positive, not {p99_bound_ms}")
    if factor <= 1:
        raise InputError(f"the ramp's factor must be above 1, not {factor}")
    if not 1 <= steps <= 50:
        raise InputError(f"--steps must be 1..50, not {steps}")
    options.check()
    per_case = options.mix.messages_per_case()
    ceiling = Ceiling(p99_bound_ms)
    rate = options.rate
    for _ in range(steps):
        if interruption is not None and interruption.count:
            break  # stopped between two steps
        report = await run(replace(options, rate=round(rate, 3)))
        step = ramp_step(report, p99_bound_ms, per_case)
        ceiling.steps.append(step)
        if step.held or ceiling.figures is None:
            ceiling.figures = report.as_json()
        if on_step is not None:
            on_step(step)
        if not step.held:
            break
        rate *= factor
    return ceiling


__all__ = ["Ceiling", "RampStep", "find_max", "ramp_step"]
