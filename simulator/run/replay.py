"""Replaying a log: re-publish it to a broker at a chosen speed, or re-run it and compare.

Re-publishing sends each committed event to the same topics the umpire
used, grouped as it grouped them, marked `"replay": true`, with the gaps
between simulated times scaled by the speed (or none at `max`), so a
dashboard cannot tell a replay from a live run except by the marker.

Checking re-runs the scenario and seed recorded in the log with today's
code (simulated time, so deterministic) and compares the two logs event by
event, apart from wall-clock fields; the first difference is named.
"""

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Iterable,
    Sequence,
)
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from simulator.context import monotonic, speed_problem
from simulator.errors import InputError
from simulator.eventlog import Event
from simulator.lifetime import private_workdir
from simulator.lineage import (
    FORK_POSITION,
    GENERATION,
    PARENT,
    RESUMED_AT,
    Lineage,
    read_lineage,
    resumed_positions,
    whole_number,
)
from simulator.logfiles import EXTERNAL_METADATA, is_postgres, partition_locations, reading
from simulator.messaging.bus import Bus
from simulator.messaging.routing import confidential_cases, publish_events
from simulator.messaging.topics import Topics
from simulator.messaging.wire import Ended, encode
from simulator.records import EXERCISE_ENDED
from simulator.run.exercise import Exercise, RunOptions, RunOutcome, run_exercise
from simulator.run.security import SECRET_SIGNING, SIGNING_METADATA
from simulator.scenario.model import Scenario
from simulator.signing import load_or_create_secret, signing_secret_path, write_private_bytes

# Fields that differ between two runs of the same scenario and seed.
WALL_CLOCK_FIELDS = ("wallclock", "hash", "prevhash")


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    position: int
    published: int
    total: int


async def republish(
    events: Sequence[Event] | AsyncIterable[Event],
    bus: Bus,
    topics: Topics,
    *,
    speed: float | None,
    progress: Callable[[ReplayProgress], None] | None = None,
    sleep: Callable[[float], Any] = asyncio.sleep,
    total: int | None = None,
    private_cases: Iterable[str] = (),
) -> int:
    """Publish events in order, paced by their simulated times / speed (None: no pacing).

    `events` may be a stream (a store's `read`), so a log of millions of events is
    published without holding it in memory; `total` is then how many it holds, for
    `progress`. `private_cases`: confidential cases whose requests come before `events`
    (a replay `--from` a later position: `confidential_before`).
    """
    if speed is not None and (problem := speed_problem(speed)):
        raise InputError(f"--speed {problem}, or max")
    if isinstance(events, Sequence):
        total = len(events) if total is None else total
    messages = 0
    published = 0
    started = monotonic()
    first: datetime | None = None
    last: Event | None = None
    # Confidential cases stay off the observers' topics in a replay too (Art. 6.3).
    private: set[str] = set(private_cases)

    async def publish(group: list[Event]) -> None:
        nonlocal messages, published, first
        moment = group[0].time
        first = moment if first is None else first
        if speed is not None:
            due = (moment - first).total_seconds() / speed
            wait = due - (monotonic() - started)
            if wait > 0:
                await sleep(wait)
        private.update(confidential_cases(group))
        messages += await publish_events(bus, topics, group, replay=True, private_cases=private)
        published += len(group)
        if progress is not None:
            progress(ReplayProgress(group[-1].position, published, total or published))

    group: list[Event] = []
    async with contextlib.aclosing(_stream(events)) as stream:
        async for event in stream:
            if group and event.time != group[0].time:
                await publish(group)
                group = []
            group.append(event)
            last = event
    if group:
        await publish(group)
    if last is not None:
        ended = Ended(head=last.position, time=last.time, reason="replay finished")
        await bus.publish(topics.clock, encode(ended))
    return messages


async def _stream(events: Sequence[Event] | AsyncIterable[Event]) -> AsyncGenerator[Event, None]:
    if isinstance(events, Sequence):
        for event in events:
            yield event
        return
    try:
        async for event in events:
            yield event
    finally:
        # A replay stopped midway (Ctrl-C, a broker gone) closes its stream here, in
        # order. Left to the loop's shutdown, which closes every unfinished generator at
        # once, a store's reader and the context that opened it raced: a traceback
        # ("athrow(): asynchronous generator is already running") after the message.
        if isinstance(events, AsyncGenerator):
            await events.aclose()


async def range_summary(
    location: str, start: int = 1, until: int | None = None
) -> tuple[int, str | None]:
    """How many events `read_range` would give and the exercise of the first, reading one."""
    async with reading(location) as store:
        head = await store.head()
        last = head if until is None else min(until, head)
        count = max(0, last - max(start, 1) + 1)
        if not count:
            return 0, None
        async for event in store.read(start, start):
            return count, event.exercise
    return 0, None


async def stream_range(
    location: str, start: int = 1, until: int | None = None
) -> AsyncGenerator[Event, None]:
    """The events of a range, one at a time, each checked against the chain as it is read."""
    async with (
        reading(location) as store,
        contextlib.aclosing(_stream(store.read(start, until))) as events,
    ):
        async for event in events:
            yield event


async def confidential_before(location: str, start: int) -> set[str]:
    """The confidential cases (Art. 6.3) whose requests come before position `start`.

    A replay `--from` a later position must keep them off the observers' topics too:
    it had learnt a case was confidential only from its request, which it skipped.
    """
    if start <= 1:
        return set()
    found: set[str] = set()
    async with contextlib.aclosing(stream_range(location, 1, start - 1)) as events:
        async for event in events:
            found.update(confidential_cases((event,)))
    return found


async def read_range(location: str, start: int = 1, until: int | None = None) -> list[Event]:
    """The events from `start` to `until`; a partitioned run's merged (`logfiles.reading`)."""
    async with reading(location) as store:
        return [e async for e in store.read(start, until)]


@dataclass(frozen=True, slots=True)
class CheckResult:
    recorded: int
    rerun: int
    first_difference: int | None
    # What differs there; when nothing does, "" or a note (a resumed run's rounds).
    what: str
    rerun_log: str

    @property
    def ok(self) -> bool:
        return self.first_difference is None


async def recorded_run(location: str) -> tuple[Scenario, int, str]:
    """The scenario, seed and clock a log was recorded with (from its metadata)."""
    async with reading(location) as store:
        text = await store.get_metadata("scenario")
        seed = await store.get_metadata("seed")
        clock = await store.get_metadata("clock") or "simulated"
    if text is None or seed is None:
        raise InputError(f"{location}: the log does not record its scenario and seed")
    try:
        scenario = Scenario.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise InputError(
            f"{location}: the scenario its metadata records cannot be read "
            f"({exc.error_count()} problems; first at {where}: {first['msg']}); "
            "`log verify` names a metadata edit"
        ) from None
    return scenario, _whole_number(location, "seed", seed), clock


def _whole_number(location: str, key: str, value: str) -> int:
    """A whole number the log's metadata records under `key`, or InputError naming it.

    ASCII digits only: `str.isdigit` also passes `²`, which `int` refuses.
    """
    number = whole_number(value)
    if number is None:
        raise InputError(f"{location}: its metadata's {key} is {value!r}, not a whole number")
    return number


def comparable(event: Event) -> dict[str, Any]:
    data = event.model_dump(mode="json")
    for key in WALL_CLOCK_FIELDS:
        data.pop(key, None)
    return data


def _differences(left: Any, right: Any, path: str = "") -> list[str]:
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in sorted(set(left) | set(right)):
            where = f"{path}.{key}" if path else str(key)
            if key not in left or key not in right:
                found.append(f"{where} only in the {'rerun' if key in right else 'recording'}")
            else:
                found += _differences(left[key], right[key], where)
        return found
    if left != right:
        return [f"{path}: recorded {left!r}, now {right!r}"]
    return []


# How a simulated run holds its rounds changed (issue 16): a round only when something
# is due, asking only the parties with something to say, replies sent ahead and held,
# and not before a party could act on what it has not seen (its lookahead). A log
# recorded before differs from today's rerun in its end event's round count alone.
ROUNDS_CHANGED = (
    "only the number of rounds differs (recorded {old}, now {new}): since issue 16 the "
    "simulated clock holds a round only when something is due and a party could act on "
    "what it has not seen, and asks only the parties with something to say, so a log "
    "recorded before counts more rounds; every event before it is the same"
)


# A resumed run's end counts the rounds its last resumption held, not the whole run's:
# the one difference from the run never interrupted that the README allows.
RESUMED_ROUNDS = (
    "the count of rounds differs only because the run was resumed (at position {at}): "
    "its end counts the {old} rounds held since, a run never interrupted {new}; "
    "every event is the same"
)
# Fewer rounds than the rerun, and no resumption recorded: not issue 16's older logs
# (they count more), most likely a run resumed before resumptions were recorded.
FEWER_ROUNDS = (
    "only the number of rounds differs (recorded {old}, now {new}): a log counts fewer "
    "rounds than its rerun when its run was resumed (the resumed run counts only the "
    "rounds it held), but this log records no resumption; every event before it is the same"
)


# A log checked before its run ended (still running, or interrupted): it had "diverged"
# where it stopped, exit 1, though today's code reproduced every event it held.
UNFINISHED = (
    "the log has no end yet (its run is still being written, or was interrupted: "
    "`simulator resume` goes on with it): every one of its {recorded} events is the same; "
    "the rerun goes on to {rerun}"
)


def _rounds_only(old: Event, differences: Sequence[str]) -> bool:
    return old.type == EXERCISE_ENDED and all(d.startswith("data.rounds:") for d in differences)


def first_difference(
    recorded: Sequence[Event], rerun: Sequence[Event], *, resumed_at: Sequence[int] = ()
) -> tuple[int | None, str]:
    """The first position where the logs differ and what differs; (None, note) if none does.

    `resumed_at`: where the recorded run was resumed (its metadata), so a count of
    rounds that differs for that reason alone is no difference.
    """
    for old, new in zip(recorded, rerun, strict=False):
        differences = _differences(comparable(old), comparable(new))
        if differences and _rounds_only(old, differences):
            before, now = old.data.get("rounds"), new.data.get("rounds")
            if resumed_at:
                at = ", ".join(map(str, resumed_at))
                return None, RESUMED_ROUNDS.format(at=at, old=before, new=now)
            if isinstance(before, int) and isinstance(now, int) and before < now:
                return old.position, FEWER_ROUNDS.format(old=before, new=now)
            return old.position, ROUNDS_CHANGED.format(old=before, new=now)
        if differences:
            shown = "; ".join(d[:200] for d in differences[:5])
            return old.position, shown
    if len(recorded) < len(rerun) and not any(e.type == EXERCISE_ENDED for e in recorded):
        # A log without its end is a run still being written or one interrupted: what it
        # holds is all there is to compare, and a divergence it is not.
        return None, UNFINISHED.format(recorded=len(recorded), rerun=len(rerun))
    if len(recorded) != len(rerun):
        position = min(len(recorded), len(rerun)) + 1
        longer = "recording" if len(recorded) > len(rerun) else "rerun"
        return position, (
            f"the {longer} goes on: {len(recorded)} events recorded, {len(rerun)} now"
        )
    return None, ""


async def _metadata(location: str, key: str) -> str | None:
    async with reading(location) as store:
        return await store.get_metadata(key)


async def _recorded_number(location: str, key: str, default: int) -> int:
    """The whole number the log's metadata records under `key`; `default` if none."""
    value = await _metadata(location, key)
    return default if not value else _whole_number(location, key, value)


async def exercise_end(location: str) -> Event | None:
    """The event ending the exercise, if the log's last one is that; reads only the last."""
    async with reading(location) as store:
        head = await store.head()
        last = [e async for e in store.read(head, head)] if head else []
    return last[0] if last and last[0].type == EXERCISE_ENDED else None


@dataclass(frozen=True, slots=True)
class ForkStart:
    """What a fork starts from: the parent's first events, its seed and where it came from."""

    prefix: list[Event]
    generation: int
    parent: str
    scenario: Scenario
    options: RunOptions

    @property
    def lineage(self) -> Lineage:
        return Lineage(parent=self.parent, position=len(self.prefix), generation=self.generation)


async def prepare_fork(
    location: str,
    at: int,
    output: str | None,
    *,
    scenario: Scenario | None = None,
    seed: int | None = None,
    options: RunOptions | None = None,
    live: bool = False,
) -> ForkStart:
    """Read the parent's first `at` events and settle the fork's scenario, seed and options.

    With another scenario (other policies, other injects, people at seats) it answers
    "what if"; the parties must be the same. `live`: the fork goes on in real time with
    people at its seats (`simulator serve --fork`), so a parent run on either clock will
    do; a simulated fork (`simulator fork`) needs a simulated parent to go on as it did.
    """
    recorded, recorded_seed, clock = await recorded_run(location)
    if clock != "simulated" and not live:
        raise InputError(f"{location}: only simulated-time runs can be forked")
    async with reading(location) as store:
        head = await store.head()
    if not 1 <= at <= head:
        raise InputError(f"{location}: --at {at} is outside the log (1..{head})")
    prefix = await read_range(location, 1, at)
    ended = next((e.position for e in prefix if e.type == EXERCISE_ENDED), None)
    if ended is not None:
        raise InputError(
            f"{location}: the run ended at position {ended}; fork at {ended - 1} or before"
        )
    chosen = scenario or recorded
    if sorted(p.id for p in chosen.parties) != sorted(p.id for p in recorded.parties):
        raise InputError("a fork keeps the parties of its parent; the scenario names others")
    # The kept events are the parent's exercise on the parent's timeline: a fork under
    # another exercise id lost its parties' work on the kept cases, and one whose
    # start or end left the kept events outside its time stopped on a traceback.
    if chosen.exercise != recorded.exercise:
        raise InputError(
            f"a fork keeps the exercise of its parent ({recorded.exercise}); "
            f"the scenario is {chosen.exercise}"
        )
    if chosen.start != recorded.start:
        raise InputError(
            f"a fork keeps the start of its parent ({recorded.start.isoformat()}); "
            f"the scenario starts {chosen.start.isoformat()}"
        )
    if chosen.end < prefix[-1].time:
        raise InputError(
            f"the scenario ends {chosen.end.isoformat()}, before the fork's position {at} "
            f"({prefix[-1].time.isoformat()}); give it a longer duration"
        )
    generation = await _recorded_number(location, GENERATION, 0) + 1
    options = dataclasses.replace(
        options or RunOptions(), log=output, seed=recorded_seed if seed is None else seed
    )
    options = await _same_security(location, options, keep_for=output)
    return ForkStart(prefix, generation, _named_fully(location), chosen, options)


def _named_fully(location: str) -> str:
    """A log's name from anywhere: a file's full path, a URL as it is.

    A relative path named a fork's parent only from the directory the fork was made
    in: `resume` of a fork killed before it copied the parent's events, run from
    elsewhere, missed the parent or found another file.
    """
    return location if is_postgres(location) else os.path.abspath(location)


async def fork(
    location: str,
    at: int,
    output: str,
    *,
    scenario: Scenario | None = None,
    seed: int | None = None,
    broker: str = "embedded",
    on_commit: Callable[[Sequence[Event]], None] | None = None,
) -> RunOutcome:
    """A new run that keeps the log's first `at` events and goes on from there.

    With another scenario (other policies, other injects) it answers "what if";
    the parties must be the same. The new log records its parent and position.
    """
    start = await prepare_fork(
        location, at, output, scenario=scenario, seed=seed, options=RunOptions(broker=broker)
    )
    return await _go_on(
        start.scenario,
        start.options,
        start.prefix,
        generation=start.generation,
        parent=start.parent,
        on_commit=on_commit,
    )


async def resume(
    location: str,
    *,
    broker: str = "embedded",
    speed: float | None = None,
    external: Sequence[str] | None = None,
    on_commit: Callable[[Sequence[Event]], None] | None = None,
) -> RunOutcome:
    """Go on with an interrupted run (killed, or its machine lost) in its own log.

    The scenario, seed and clock are the log's. A simulated run goes on exactly
    as it would have without the interruption: every party folds the log again
    and plans what it planned then, under the same ids, and the umpire's agenda
    and numbering go on from the log. A realtime run goes on from the time of
    its last event, at `speed` (default: the recorded one). The parties the run
    left to `simulator party` processes are left to them again (their seat files
    written anew, for the new broker), unless `external` says which are.
    """
    # A partitioned run goes on in each partition from its own log.
    by_partition = [await read_range(part) for part in await partition_locations(location)]
    events = await read_range(location)
    if not events:
        return await _fork_again(location, broker=broker, on_commit=on_commit)
    recorded, seed, clock = await recorded_run(location)
    if any(e.type == EXERCISE_ENDED for e in events):
        raise InputError(
            f"{location}: the exercise ended at position {events[-1].position}; nothing to "
            "resume (`simulator fork` it to go on another way)"
        )
    generation = await _recorded_number(location, GENERATION, 0)
    if external is None:
        external = await recorded_external(location)
    options = RunOptions(
        broker=broker,
        log=location,
        seed=seed,
        clock="realtime" if clock == "realtime" else "simulated",
        speed=speed or await _recorded_speed(location),
        external=tuple(external),
        partitions=len(by_partition),
    )
    options = await _same_security(location, options)
    return await _go_on(
        recorded,
        options,
        events,
        generation=generation,
        resuming=True,
        on_commit=on_commit,
        partition_prefixes=by_partition,
    )


async def recorded_external(location: str) -> list[str]:
    """The parties a run left to `simulator party` processes (`run --external`)."""
    return [p for p in (await _metadata(location, EXTERNAL_METADATA) or "").split(",") if p]


async def _recorded_speed(location: str) -> float:
    """The speed a realtime run was recorded at (1 if none), or InputError naming it."""
    value = await _metadata(location, "speed")
    if not value:
        return 1.0
    try:
        speed = float(value)
    except ValueError:
        raise InputError(f"{location}: its metadata's speed is {value!r}, not a number") from None
    if problem := speed_problem(speed):
        raise InputError(f"{location}: its metadata's speed {problem}")
    return speed


async def _fork_again(
    location: str, *, broker: str, on_commit: Callable[[Sequence[Event]], None] | None
) -> RunOutcome:
    """Resume a fork killed before it committed its copy of the parent's first events.

    Its log records the fork (written before the copy) and holds nothing else: the fork
    is made again into it, from the parent it names, with its scenario and seed.
    """
    async with reading(location) as store:
        metadata = await store.metadata()
    lineage = read_lineage(metadata)
    if lineage is None or not lineage.parent or "scenario" not in metadata:
        # Killed before it wrote all it is (or a run that never had a first event).
        raise InputError(f"{location}: the run never started; run (or fork) it afresh")
    scenario, seed, _ = await recorded_run(location)
    # The same fork as the first time: its generation follows from the parent again.
    return await fork(
        lineage.parent,
        lineage.position,
        location,
        scenario=scenario,
        seed=seed,
        broker=broker,
        on_commit=on_commit,
    )


async def _go_on(
    scenario: Scenario,
    options: RunOptions,
    prefix: Sequence[Event],
    *,
    generation: int,
    on_commit: Callable[[Sequence[Event]], None] | None,
    parent: str | None = None,
    resuming: bool = False,
    partition_prefixes: Sequence[Sequence[Event]] = (),
) -> RunOutcome:
    """Run `scenario` on from the committed events `prefix` (a fork, or a resumed run)."""
    async with Exercise(
        scenario,
        options,
        prefix=prefix,
        generation=generation,
        parent=parent,
        resuming=resuming,
        on_commit=on_commit,
        partition_prefixes=partition_prefixes,
    ) as exercise:
        return await exercise.run()


async def _same_security(
    location: str, options: RunOptions, *, keep_for: str | None = None
) -> RunOptions:
    """A secure run's re-run or fork signs with the recorded run's secret (the same log)."""
    if await _metadata(location, SIGNING_METADATA) != SECRET_SIGNING:
        return options
    secret = signing_secret_path(location)
    if not secret.exists():
        raise InputError(
            f"{location} was recorded with --secure; its signing secret {secret} is missing, "
            "and without it no re-run can sign as the original did"
        )
    if keep_for is not None:
        # The fork's own log must be checkable later: it gets a copy of the secret, where
        # a secure run in it keeps its own (a PostgreSQL log's too: its fork could be
        # neither checked nor forked again).
        copy = signing_secret_path(keep_for)
        copy.parent.mkdir(parents=True, exist_ok=True)
        write_private_bytes(copy, load_or_create_secret(secret))
        secret = copy
    return dataclasses.replace(options, secure=True, signing_secret=secret)


async def check(
    location: str, *, workdir: Path | None = None, broker: str = "embedded"
) -> CheckResult:
    """Re-run the log's scenario and seed with today's code; name the first difference.

    A forked log is re-forked from its own first events, so it can be checked too.
    """
    scenario, seed, clock = await recorded_run(location)
    if clock != "simulated":
        raise InputError(
            f"{location} was recorded on the {clock} clock, which is not reproducible; "
            "only simulated-time runs can be checked"
        )
    recorded = await read_range(location)
    fork_position = await _recorded_number(location, FORK_POSITION, 0)
    resumed_at = resumed_positions(await _metadata(location, RESUMED_AT))
    with private_workdir("simulator-check-") as directory:
        base = workdir or directory
        rerun_log = str(base / "rerun.db")
        options = RunOptions(broker=broker, log=rerun_log, seed=seed)
        options = await _same_security(location, options)
        if fork_position:
            async with Exercise(
                scenario,
                options,
                prefix=recorded[:fork_position],
                generation=await _recorded_number(location, GENERATION, 1),
                parent=await _metadata(location, PARENT),
            ) as exercise:
                await exercise.run()
        else:
            await run_exercise(scenario, options)
        rerun = await read_range(rerun_log)
    position, what = first_difference(recorded, rerun, resumed_at=resumed_at)
    return CheckResult(len(recorded), len(rerun), position, what, rerun_log)
