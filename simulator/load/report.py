"""The figures of a load run: rates, latency percentiles, and the reconciliation against the log."""

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))


def latency_summary(hist: HdrHistogram) -> dict[str, float]:
    """p50/p90/p99/p99.9/max in milliseconds, and the count (0s for an empty histogram).

    One pass over the histogram for all percentiles: hdrh's per-call walk and
    its mean are in Python and cost tenths of a second each on a wide range.
    """
    if hist.get_total_count() == 0:
        return {name: 0.0 for name, _ in PERCENTILES} | {"max": 0.0, "count": 0}
    values = hist.get_percentile_to_value_dict([p for _, p in PERCENTILES])
    summary: dict[str, float] = {name: round(values[p] / 1000, 3) for name, p in PERCENTILES}
    summary["max"] = round(hist.get_max_value() / 1000, 3)
    summary["count"] = hist.get_total_count()
    return summary


CURVE = (0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999)


def percentile_curve(hist: HdrHistogram) -> list[tuple[float, float]]:
    """(percentile, latency ms) points for a percentile plot, 0 .. 100."""
    if hist.get_total_count() == 0:
        return []
    values = hist.get_percentile_to_value_dict(list(CURVE))
    points = [(p, values[p] / 1000) for p in CURVE]
    points.append((100.0, hist.get_max_value() / 1000))
    return points


# A process that used this share of a core over the run, or more, ran out of CPU: a
# Python process runs its code on one core at a time (a store's thread aside).
BUSY_PROCESS = 0.85
# The processes on this machine together used this share of its cores, or more.
BUSY_MACHINE = 0.9
ROLES = ("umpire", "generators", "broker", "runner")


def cpu_use(
    cpu_s: Mapping[str, float],
    wall_s: float,
    processes: Mapping[str, int],
    cores: int,
    elsewhere: Iterable[str] = (),
) -> dict[str, Any]:
    """How many cores each role kept busy over the run, and which ran out of CPU first.

    `cpu_s` is each role's CPU seconds over the run's `wall_s`, `processes` how
    many processes each role has, `cores` this machine's, `elsewhere` the roles
    not on it (generators started by --worker-command). What a load run
    carries is bounded by whichever ran out: the machine (its cores all busy),
    or one role's processes (each kept a core busy while others idled), or
    neither (the rate was below capacity, or latency bounded it).
    """
    wall = max(wall_s, 1e-9)
    busy = {role: round(cpu_s[role] / wall, 2) for role in ROLES if role in cpu_s}
    away = set(elsewhere)
    here = round(sum(v for role, v in busy.items() if role not in away), 2)
    per_process = {role: v / max(processes.get(role, 1), 1) for role, v in busy.items()}
    full = [r for r in busy if r != "runner" and per_process[r] >= BUSY_PROCESS]
    if here >= BUSY_MACHINE * cores:
        bound: str | None = "machine"
        why = f"the machine ({here:g} of its {cores} cores busy)"
    elif full:
        bound = max(full, key=lambda r: per_process[r])
        count = processes.get(bound, 1)
        each = "its process" if count == 1 else f"each of its {count} processes"
        why = f"the {bound} ({each} kept a core {per_process[bound]:.0%} busy)"
    else:
        bound, why = (
            None,
            "nothing (no process kept a core busy, nor all of them the machine's cores)",
        )
    return {"cores_busy": busy, "cores_busy_here": here, "cores": cores, "bound": bound, "why": why}


def cpu_roles(data: Mapping[str, Any]) -> str:
    """A run's `cpu_use` in words: each role's cores busy and ms per event, and the machine's.

    "" for figures without it (a run that could not be made). The console and the
    HTML page both show this line.
    """
    use, per_event = data.get("cpu_use"), data.get("cpu_ms_per_event", {})
    if not use:
        return ""
    roles = ", ".join(
        f"{role} {cores:g} ({per_event[role]:g} ms/event)"
        for role, cores in use["cores_busy"].items()
        if role in per_event
    )
    return f"{roles}; {use['cores_busy_here']:g} of this machine's {use['cores']}"


# What a run's end says, in order of precedence, and the exit code of each.
VERDICTS = {
    "failed": 2,  # could not be run or carried to its end
    "lost": 1,  # something lost, duplicated or never delivered
    "saturated": 3,  # nothing lost, but offered more than it carried
    # Stopped by Ctrl-C or SIGTERM before its schedule's end: nothing lost, figures
    # for what ran (128 + SIGINT, as a shell reports an interrupted command).
    "interrupted": 130,
    "ok": 0,
}


def climbing_from(series: list[tuple[float, float]], grew_by: float) -> float | None:
    """When `series` left its low level for good, if it ended `grew_by` above it.

    The start of a climb that did not come back down: a backlog or a latency
    that a system past its capacity piles up. It is the last time the series
    stood at its low level (within half of `grew_by` of its lowest) and never
    fell below afterwards. None when it ends less than `grew_by` above that
    (it held). (The first such time had been taken: a backlog starts at 0, so
    every climb had seemed to start at the run's first second.)
    """
    if not series:
        return None
    last = series[-1][1]
    low = min(value for _, value in series) + grew_by / 2
    lowest_after = float("inf")
    floors: list[bool] = []
    for _, value in reversed(series):
        lowest_after = min(lowest_after, value)
        floors.append(value <= lowest_after)
    floors.reverse()
    start = None
    for (t, value), floor in zip(series, floors, strict=True):
        if floor and value <= low and last - value >= grew_by:
            start = t
    return start


def saturation_summary(
    progress: list[dict[str, Any]],
    over_time: list[dict[str, Any]],
    *,
    duration_s: float,
    offered_cases_per_s: float,
    messages_per_case: float,
) -> dict[str, Any]:
    """When backlog and latency started to climb during the schedule, and what was carried then.

    Backlog is the cases open each second (the live progress); it climbs once
    it has grown by more than a second of offered cases and never came back.
    Latency is each second's p99; it climbs once it has doubled (and grown by
    50 ms at least) and never came back. The committed rate from the first
    climb to the schedule's end is what the system sustained while past its
    capacity.
    """
    window = [p for p in progress if p["t"] <= duration_s + 0.5]
    backlog = climbing_from(
        [(p["t"], float(p["open"])) for p in window], max(offered_cases_per_s, 10.0)
    )
    p99 = [(float(p["t"]), p["p99"]) for p in over_time if p["t"] <= duration_s]
    latency = None
    if p99:
        latency = climbing_from(p99, 50.0)
        if latency is not None:
            start = next(v for t, v in p99 if t == latency)
            latency = latency if p99[-1][1] >= 2 * start else None
    climbs = [t for t in (backlog, latency) if t is not None]
    at = min(climbs) if climbs else None
    carried = [p["events_per_s"] for p in window if at is not None and p["t"] >= max(at, 1.0)]
    return {
        "offered_events_per_s": round(offered_cases_per_s * messages_per_case, 1),
        "backlog_climbing_from_s": backlog,
        "latency_climbing_from_s": latency,
        "committed_events_per_s_while_climbing": round(statistics.median(carried), 1)
        if carried
        else None,
    }


@dataclass
class LoadReport:
    broker: str
    log: str
    parties: int
    processes: int
    qos: int
    mode: str
    payload_bytes: int
    duration_s: float
    wall_s: float
    offered_cases_per_s: float
    cases_scheduled: int
    cases_started: int
    cases_completed: int
    cases_incomplete: int
    paths: dict[str, int]
    submitted: int
    committed_messages: int
    events: int
    lost: int
    duplicated: int
    rejected: int
    undelivered: int
    deliveries_duplicated: int
    deliveries_recovered: int
    resends: int
    catch_ups: int
    deadline_misses: int
    protocol_deadlines_elapsed: int
    mqtt_messages: int
    latency: HdrHistogram
    case_latency: HdrHistogram
    over_time: list[dict[str, Any]]
    progress: list[dict[str, Any]]
    errors: list[str]
    case_deadline_s: float
    paths_known: tuple[str, ...] = ()
    umpire_rejections: int = 0
    # Scheduled but never offered: the generator could not start them before the
    # schedule's end (it was itself past capacity).
    cases_not_started: int = 0
    # Still open when the drain ran out: their last submission not yet in the log, or
    # their last commits not yet seen by their recipients. Late, not lost.
    submissions_in_flight: int = 0
    deliveries_in_flight: int = 0
    saturation: dict[str, Any] = field(default_factory=dict)
    # Why the run could not be carried to its end (its broker gone, say), if it could not:
    # the figures then cover what was done before.
    failure: str | None = None
    # Stopped by Ctrl-C or SIGTERM (`simulator.load.interrupt`): offering stopped early.
    interrupted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Run to its end; nothing lost, nothing duplicated, every commit seen by its recipient."""
        return (
            self.failure is None
            and self.lost == 0
            and self.duplicated == 0
            and self.undelivered == 0
        )

    @property
    def saturated(self) -> bool:
        """Offered more than it carried: cases never started, or still open after the drain."""
        return self.cases_incomplete > 0 or self.cases_not_started > 0

    @property
    def verdict(self) -> str:
        """failed, lost, interrupted, saturated or ok (`VERDICTS`, with their exit codes)."""
        if self.failure is not None:
            return "failed"
        if not self.ok:
            return "lost"
        if self.interrupted:
            return "interrupted"
        return "saturated" if self.saturated else "ok"

    def sustained_events_per_s(self) -> float:
        """Median committed events per second over the seconds of the schedule (after the first)."""
        window = [
            p["events_per_s"] for p in self.progress if 1.0 <= p["t"] <= self.duration_s + 0.5
        ]
        return round(statistics.median(window), 1) if window else 0.0

    def as_json(self) -> dict[str, Any]:
        wall = max(self.wall_s, 1e-9)
        return {
            "broker": self.broker,
            "log": self.log,
            "mode": self.mode,
            "parties": self.parties,
            "processes": self.processes,
            "qos": self.qos,
            "payload_bytes": self.payload_bytes,
            "duration_s": self.duration_s,
            "wall_s": round(self.wall_s, 3),
            "offered_cases_per_s": self.offered_cases_per_s,
            "achieved_cases_per_s": round(self.cases_completed / wall, 1),
            "committed_events_per_s": round(self.events / wall, 1),
            "committed_events_per_s_sustained": self.sustained_events_per_s(),
            "mqtt_messages_per_s": round(self.mqtt_messages / wall, 1),
            "cases": {
                "scheduled": self.cases_scheduled,
                "started": self.cases_started,
                "completed": self.cases_completed,
                "incomplete": self.cases_incomplete,
                "not_started": self.cases_not_started,
                "by_path": self.paths,
            },
            # Cases the run left open, counted apart from loss: what was in flight.
            "unfinished": {
                "cases": self.cases_incomplete,
                "submissions_in_flight": self.submissions_in_flight,
                "deliveries_in_flight": self.deliveries_in_flight,
            },
            "saturated": self.saturated,
            "saturation": self.saturation,
            "interrupted": self.interrupted,
            "submitted": self.submitted,
            "committed_messages": self.committed_messages,
            "events": self.events,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "rejected": self.rejected,
            "undelivered": self.undelivered,
            "deliveries_duplicated": self.deliveries_duplicated,
            "deliveries_recovered": self.deliveries_recovered,
            "resends": self.resends,
            "catch_ups": self.catch_ups,
            "deadline_misses": self.deadline_misses,
            "case_deadline_s": self.case_deadline_s,
            "protocol_deadlines_elapsed": self.protocol_deadlines_elapsed,
            "mqtt_messages": self.mqtt_messages,
            "latency_ms": latency_summary(self.latency),
            "case_latency_ms": latency_summary(self.case_latency),
            "latency_over_time": self.over_time,
            # What the live progress showed each second: committed events/s, cases, p99.
            "progress": self.progress,
            "percentiles_ms": {
                "message": percentile_curve(self.latency),
                "case": percentile_curve(self.case_latency),
            },
            "errors": self.errors,
            "failure": self.failure,
            "ok": self.ok,
            "verdict": self.verdict,
            **self.extra,
        }


__all__ = [
    "VERDICTS",
    "LoadReport",
    "climbing_from",
    "cpu_roles",
    "cpu_use",
    "latency_summary",
    "percentile_curve",
    "saturation_summary",
]
