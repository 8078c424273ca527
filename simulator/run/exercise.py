"""Running an exercise: broker, log, umpire and simulated parties, then the summary.

Every party gets its own connection with its own credentials, so the
broker's ACL holds it to its own topics, as it would in another process.
`Exercise` is the long form (tests and the web console reach into it:
a party can be stopped and replaced mid-run); `run_exercise` the short one.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import structlog

from simulator.brokers import (
    Broker,
    MosquittoBroker,
    exercise_principals,
    start_broker,
    transport_for,
)
from simulator.context import (
    ScaledClock,
    VirtualClock,
    fresh_rng,
    monotonic,
    secret_hex,
    secret_token,
    seeded,
    wall_now,
)
from simulator.errors import InputError
from simulator.eventlog import Event, EventStore, LogError, NewEvent
from simulator.eventlog.merged import MergedLog
from simulator.eventlog.store import InspectableStore
from simulator.lifetime import private_workdir
from simulator.lineage import FORK_POSITION, GENERATION, PARENT, RESUMED_AT, with_resumption
from simulator.logfiles import (
    EXTERNAL_METADATA,
    PARTITIONS_METADATA,
    is_postgres,
    open_log,
    partition_location,
    split_postgres,
    sqlite_files,
    writing,
)
from simulator.messaging.topics import MAX_PARTITIONS, Topics
from simulator.messaging.wire import Tick
from simulator.party import PartyRuntime
from simulator.party.policy import PolicyEngine
from simulator.projections.summary import RunSummary, summarize
from simulator.records import record_exercise_started
from simulator.run.control import ControlFile, control_path, write_control_file
from simulator.run.seat import SeatFile, seat_path, seat_signing, write_seat_file
from simulator.run.security import (
    SECRET_SIGNING,
    SIGNING_METADATA,
    SecurityOptions,
    broker_tls,
    signatories_for,
)
from simulator.scenario.model import Scenario
from simulator.transport import SessionSettings, Transport, private_client_id
from simulator.umpire import Umpire, UmpireResult, UmpireSettings
from simulator.umpire.agenda import ScenarioAgenda
from simulator.umpire.partitions import PartitionGroup, SharedAgenda
from simulator.umpire.sequencer import Sequencer

log = structlog.get_logger("simulator.run.exercise")

ClockMode = Literal["simulated", "realtime"]


@dataclass
class RunOptions:
    broker: str = "embedded"
    log: str | None = None
    seed: int | None = None
    clock: ClockMode = "simulated"
    speed: float = 1.0
    runs_dir: Path = Path("runs")
    workdir: Path | None = None
    party_timeout_s: float = 60.0
    # Parties played by separate `simulator party` processes.
    external: tuple[str, ...] = ()
    # --secure: TLS-only broker, secret signature keys (simulator.run.security).
    secure: bool = False
    signing_secret: Path | None = None
    # Cases split among this many umpires (realtime, a PostgreSQL log: each partition's
    # log is the schema `{schema}_p{n}`); 0: one umpire (simulator.umpire.partitions).
    partitions: int = 0


@dataclass
class RunOutcome:
    summary: RunSummary
    result: UmpireResult
    log: str


def default_log_path(scenario: Scenario, runs_dir: Path, stamp: datetime) -> Path:
    return runs_dir / f"{scenario.exercise}-{stamp.strftime('%Y%m%dT%H%M%S')}.db"


class Exercise:
    """One run of a scenario; enter it to start the broker and open the log."""

    def __init__(
        self,
        scenario: Scenario,
        options: RunOptions,
        *,
        broker: Broker | None = None,
        on_commit: Callable[[Sequence[Event]], None] | None = None,
        on_clock: Callable[[Tick], None] | None = None,
        prefix: Sequence[Event] = (),
        generation: int = 0,
        parent: str | None = None,
        resuming: bool = False,
        partition_prefixes: Sequence[Sequence[Event]] = (),
    ) -> None:
        self.scenario = scenario
        # A fork: these committed events open the log, and the run goes on from them.
        # Resuming: they are the log (an interrupted run), which the run goes on writing.
        self.prefix = tuple(prefix)
        self.resuming = resuming
        self.generation = generation
        self.parent = parent
        self.options = options
        self.seed = scenario.seed if options.seed is None else options.seed
        # A partitioned run resumed: each partition's log as it stands (`prefix` is them
        # merged, for what is exercise-wide: the agenda and the clock).
        self.partition_prefixes = tuple(tuple(p) for p in partition_prefixes)
        if self.partition_prefixes and (
            not resuming or len(self.partition_prefixes) != options.partitions
        ):
            raise ValueError("partition_prefixes are a resumed run's, one per partition")
        self.partitions = _checked_partitions(options, bool(prefix) and not self.partition_prefixes)
        self.topics = Topics(scenario.exercise, partitions=self.partitions)
        self.on_commit = on_commit
        self.on_clock = on_clock
        humans = [p.id for p in scenario.parties if p.human]
        if humans and options.clock == "simulated":
            raise InputError(
                f"parties {', '.join(humans)} are played by people: run with --clock realtime"
            )
        self.location = options.log or str(default_log_path(scenario, options.runs_dir, wall_now()))
        self.security = SecurityOptions(options.secure, options.signing_secret)
        # Signs injects and simulated parties' requests; the umpire's fold checks them.
        self.signatories = signatories_for(scenario, self.location, self.security)
        self.agreement = scenario.protocol_agreement(self.signatories.verify)
        # A short id per run keeps MQTT sessions of different runs apart on a shared broker.
        self.run_id = secret_hex(3)
        self._given_broker = broker
        self._stack = contextlib.AsyncExitStack()
        self.broker: Broker
        self.store: EventStore
        # A partitioned run: each partition's log (the first is `store`), and their umpires.
        self.stores: list[InspectableStore] = []
        self.umpires: list[Umpire] = []
        self.group: PartitionGroup | None = None
        self.runtimes: dict[str, PartyRuntime] = {}
        self._transports: dict[str, Transport] = {}
        self._client_ids: dict[str, str] = {}
        # The log file this run creates (SQLite), removed if the run fails before its start.
        self._new_file: Path | None = None
        # Whether the run failed before its first event (set as it ends: see `_discard`).
        self._failed_empty = False
        self.umpire: Umpire
        self._group: asyncio.TaskGroup | None = None
        self._tasks: dict[str, asyncio.Task[object]] = {}

    async def __aenter__(self) -> Self:
        stack = self._stack
        await stack.__aenter__()
        try:
            await self._open(stack)
        except BaseException:
            self._failed_empty = await self._empty()
            await stack.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._failed_empty = exc_type is not None and await self._empty()
        await self._stack.__aexit__(exc_type, exc, tb)

    async def _empty(self) -> bool:
        """Whether this run made its log file and failed before its first event."""
        if self._new_file is None or not hasattr(self, "store"):
            return self._new_file is not None
        try:
            return await self.store.head() == 0
        except LogError:
            return False

    def _discard(self) -> None:
        # A run that failed before its first event leaves no log: an empty one with the
        # failed run's metadata and genesis checkpoint would be taken up by the next.
        if not self._failed_empty or self._new_file is None:
            return
        for leftover in sqlite_files(self._new_file):
            leftover.unlink(missing_ok=True)

    async def _prepare_log(self, store: EventStore, location: str, prefix: Sequence[Event]) -> None:
        """Refuse a log that holds another run; write a fork's prefix and the run's metadata."""
        scenario = self.scenario
        head = await store.head()
        if self.resuming:
            if head != len(prefix):
                raise InputError(f"{location}: the log changed while it was being resumed")
            # A resumed run counts only the rounds it holds itself: `replay --check` says so.
            resumed = await store.get_metadata(RESUMED_AT)
            await store.set_metadata(RESUMED_AT, with_resumption(resumed, head))
        elif head > 0:
            # A fork names its log with -o, a run (and serve) with --log.
            option = "-o" if prefix else "--log"
            raise InputError(
                f"{location}: already holds a run; choose a new {option}, "
                "or `simulator resume` it if it was interrupted"
            )
        # The metadata first: a run killed at any moment after this leaves a log that says
        # what it is, so `resume` can go on with it (a fork killed right after copying its
        # parent's events used to leave them without their scenario and seed).
        if prefix and not self.resuming:
            await store.set_metadata(PARENT, self.parent or "")
            await store.set_metadata(FORK_POSITION, str(len(self.prefix)))
            await store.set_metadata(GENERATION, str(self.generation))
        await store.set_metadata("exercise", scenario.exercise)
        await store.set_metadata("seed", str(self.seed))
        await store.set_metadata("clock", self.options.clock)
        if self.options.clock == "realtime":
            await store.set_metadata("speed", repr(self.options.speed))
        await store.set_metadata("scenario", scenario.model_dump_json(by_alias=True))
        if self.partitions:
            await store.set_metadata(PARTITIONS_METADATA, str(self.partitions))
        if self.options.external or self.resuming:
            await store.set_metadata(EXTERNAL_METADATA, ",".join(sorted(self.options.external)))
        if self.security.secure:
            await store.set_metadata(SIGNING_METADATA, SECRET_SIGNING)
        if prefix and not self.resuming:
            # In one transaction: the log holds all of the parent's first events or none
            # (then `resume` copies them again). Appended as they were: same ids, times
            # and data, so the same bytes and hashes.
            await store.append([NewEvent.from_event(e) for e in prefix])

    async def _open_logs(self, stack: contextlib.AsyncExitStack) -> None:
        """The run's log, or each partition's (a schema `{schema}_p{n}` each), prepared."""
        locations = (
            [partition_location(self.location, n) for n in range(self.partitions)]
            if self.partitions
            else [self.location]
        )
        # A fork's prefix opens its one log; a new partitioned run's logs start empty.
        prefixes = self.partition_prefixes or (self.prefix,) * len(locations)
        for number, (location, prefix) in enumerate(zip(locations, prefixes, strict=True)):
            store = await stack.enter_async_context(open_log(location, create=True, now=wall_now))
            if self.partitions:
                await self._own(stack, store, location, number)
            elif is_postgres(location):
                await self._fence(store)
            await self._prepare_log(store, location, prefix)
            self.stores.append(store)
        self.store = self.stores[0]

    async def _own(
        self, stack: contextlib.AsyncExitStack, store: EventStore, location: str, number: int
    ) -> None:
        """Hold partition `number` of this run as its one writer, as PostgreSQL says.

        The lease (a session advisory lock, keyed by the run's schema) is this
        process's while it lives, so a second process on the run (a `resume` of a
        run still going) is refused; the fencing token then keeps any writer that
        lost its lease unknowingly from appending (`simulator.eventlog.lease`).
        """
        # Imported here: psycopg costs a tenth of a second a SQLite run never needs.
        from simulator.eventlog.lease import PartitionLease  # noqa: PLC0415
        from simulator.eventlog.postgres import PostgresEventStore  # noqa: PLC0415

        url, schema = split_postgres(self.location)
        lease = await stack.enter_async_context(PartitionLease(url, schema, number))
        if not await lease.try_acquire():
            raise InputError(
                f"{location}: partition {number} of this run is held by another umpire, "
                "so the run is still going; stop it (simulator control stop) or let it end"
            )
        assert isinstance(store, PostgresEventStore)
        await store.claim(f"{self.run_id}-p{number}")

    async def _claim(self, stack: contextlib.AsyncExitStack) -> None:
        """Become the log's one writer for the run's whole life, before anything else.

        A second writer (a `resume` of a run still going) is refused at once, before
        it reads a head the live run is about to move past. A partitioned run's
        umpires hold their partitions instead (`_own`).
        """
        if not is_postgres(self.location):
            Path(self.location).parent.mkdir(parents=True, exist_ok=True)
        if not self.partitions:
            await stack.enter_async_context(writing(self.location))
            # Run as the stack unwinds, after the log is closed and before it is let go.
            stack.callback(self._discard)
        if not is_postgres(self.location):
            # Only once the log is ours: a run refused here must not remove the file
            # of the run that holds it (it may have just made it).
            self._new_file = _absent(Path(self.location))

    async def _fence(self, store: EventStore) -> None:
        """Claim a PostgreSQL log for this run (a fencing token), as a partition's owner does.

        The run holds the log's lease (`writing`); should its session drop unnoticed
        and a `resume` take the log over, this run's next append writes nothing.
        """
        from simulator.eventlog.postgres import PostgresEventStore  # noqa: PLC0415 - psycopg

        assert isinstance(store, PostgresEventStore)
        await store.claim(self.run_id)

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        scenario = self.scenario
        await self._claim(stack)
        if self._given_broker is not None:
            self.broker = self._given_broker
        else:
            workdir = self.options.workdir or stack.enter_context(
                private_workdir("simulator-broker-")
            )
            party_ids = [p.id for p in scenario.parties]
            tls = broker_tls(workdir, scenario.exercise, self.security)
            chosen: Broker
            if self.options.broker == "mosquitto":
                # Saved once a second rather than after every change (brokers/mosquitto.conf):
                # saving after every change costs each round trip about 10 ms, which was most
                # of a simulated run's wall time. What a killed Mosquitto loses in that second
                # the parties' resends and catch-up bring back (DESIGN invariant 3).
                chosen = MosquittoBroker(
                    self.topics,
                    exercise_principals(party_ids),
                    workdir=workdir,
                    autosave_on_changes=False,
                    tls=tls,
                    restricted_observer=self.security.secure,
                )
            else:
                chosen = start_broker(
                    self.options.broker,
                    self.topics,
                    party_ids,
                    workdir,
                    tls=tls,
                    restricted_observer=self.security.secure,
                )
            self.broker = await stack.enter_async_context(chosen)
        if self.security.secure and not self.broker.address.tls:
            raise InputError(f"--secure needs a TLS broker; {self.broker.name} has none")
        await self._open_logs(stack)
        controller = self.broker.credentials("controller")
        self.control_file = control_path(self.location)
        self.control_file.parent.mkdir(parents=True, exist_ok=True)
        write_control_file(
            self.control_file,
            ControlFile(
                exercise=scenario.exercise,
                host=self.broker.address.host,
                port=self.broker.address.port,
                username=controller.username,
                password=controller.password,
                tls=self.broker.address.tls,
                ca_file=_ca_file(self.broker),
            ),
        )
        stack.callback(self.control_file.unlink, missing_ok=True)
        unknown = set(self.options.external) - {p.id for p in scenario.parties}
        if unknown:
            raise InputError(f"--external names no party of the scenario: {sorted(unknown)}")
        for party in scenario.parties:
            if party.id in self.options.external:
                self._seat(stack, party.id)
                continue
            # One a killed run of this log left (a resume plays the party itself): it
            # names a broker that is gone, and a password.
            seat_path(self.location, party.id).unlink(missing_ok=True)
            if not party.human:
                self.runtimes[party.id] = await self._runtime(party.id)
        start = self.prefix[-1].time if self.prefix else scenario.start
        clock: VirtualClock | ScaledClock = (
            VirtualClock(start)
            if self.options.clock == "simulated"
            else ScaledClock(start, speed=self.options.speed)
        )
        agenda = ScenarioAgenda(scenario, seeded(self.seed, "agenda"), signatories=self.signatories)
        on_commit = self.on_commit
        if self.partitions and on_commit is not None:
            on_commit = Renumbered(on_commit, after=len(self.prefix))
        shared = SharedAgenda(agenda, self.partitions) if self.partitions else None
        for n, store in enumerate(self.stores):
            partition = n if self.partitions else None
            self.umpires.append(
                Umpire(
                    sequencer=Sequencer(self.agreement, scenario.exercise, wallclock=wall_now),
                    store=store,
                    bus=await self._connect("umpire", "" if partition is None else f"p{n}"),
                    topics=self.topics,
                    parties=[p.id for p in scenario.parties],
                    reporting=[p.id for p in scenario.parties if not p.human],
                    clock=clock,
                    end=scenario.start + scenario.duration,
                    agenda=agenda if shared is None else shared.view(n),
                    settings=UmpireSettings(
                        simulated=self.options.clock == "simulated",
                        party_timeout_s=self.options.party_timeout_s,
                        partition=partition,
                    ),
                    on_commit=on_commit,
                    on_clock=self.on_clock,
                )
            )
        self.umpire = self.umpires[0]
        if shared is not None:
            self.group = PartitionGroup(self.umpires, shared)
        if self.partition_prefixes:
            for umpire, prefix in zip(self.umpires, self.partition_prefixes, strict=True):
                umpire.resume(prefix)
            agenda.resume(self.prefix, self.umpire.sequencer)
        elif self.prefix:
            self.umpire.resume(self.prefix)
            agenda.resume(self.prefix, self.umpire.sequencer)
        # From here on a submission reaches the umpire, even one sent before it runs.
        for umpire in self.umpires:
            await umpire.listen()

    def client_id(self, principal: str, role: str = "") -> str:
        """The MQTT client id of `principal`'s connection (per `role`) in this run.

        Unguessable (`private_client_id`), so no participant can take another's
        connection; the same for the whole run, so a reconnect finds its session.
        """
        key = f"{principal}/{role}"
        found = self._client_ids.get(key)
        if found is None:
            found = private_client_id(self.topics.exercise, principal, secret_token(9))
            self._client_ids[key] = found
        return found

    def _seat(self, stack: contextlib.AsyncExitStack, party_id: str) -> None:
        credentials = self.broker.credentials(party_id)
        path = seat_path(self.location, party_id)
        write_seat_file(
            path,
            SeatFile(
                exercise=self.scenario.exercise,
                party=party_id,
                host=self.broker.address.host,
                port=self.broker.address.port,
                username=credentials.username,
                password=credentials.password,
                client_id=self.client_id(party_id, "seat"),
                seed=self.seed,
                generation=self.generation,
                scenario=self.scenario.model_dump_json(by_alias=True),
                tls=self.broker.address.tls,
                ca_file=_ca_file(self.broker),
                signing=seat_signing(self.signatories, party_id) if self.security.secure else None,
                partitions=self.partitions,
            ),
        )
        stack.callback(path.unlink, missing_ok=True)

    async def _connect(self, principal: str, role: str = "") -> Transport:
        transport = transport_for(
            self.broker,
            principal,
            SessionSettings(self.client_id(principal, role)),
            rng=fresh_rng(),
        )
        await self._stack.enter_async_context(transport)
        self._transports[f"{principal}/{role}" if role else principal] = transport
        return transport

    async def _runtime(self, party_id: str) -> PartyRuntime:
        party = next(p for p in self.scenario.parties if p.id == party_id)
        bus = self._transports.get(party_id) or await self._connect(party_id)
        # A fresh engine: a restarted party rebuilds everything from committed events.
        engine = PolicyEngine(
            party,
            self.scenario,
            # The parent's stream: a fork with the same scenario and seed goes on as its
            # parent did; other policies or another seed make the difference.
            seeded(self.seed, "party", party_id),
            generation=self.generation,
            # Its own keys to sign with, everyone's public keys to check with.
            signatories=self.signatories.public_only(keep=[party_id]),
        )
        return PartyRuntime(engine=engine, bus=bus, topics=self.topics)

    async def run(self) -> RunOutcome:
        began = monotonic()
        starts = [] if self.prefix else [self._start_event()]
        log.info(
            "exercise_started",
            exercise=self.scenario.exercise,
            log=self.location,
            broker=self.broker.name,
            forked_at=None if self.resuming else len(self.prefix) or None,
            resumed_at=len(self.prefix) if self.resuming else None,
        )
        async with asyncio.TaskGroup() as group:
            self._group = group
            self._tasks = {
                party_id: group.create_task(runtime.run(), name=f"party[{party_id}].run")
                for party_id, runtime in self.runtimes.items()
            }
            for runtime in self.runtimes.values():
                await runtime.ready.wait()
            if self.group is not None:
                # Partition 0's umpire ends the others before it records the end.
                for n, umpire in enumerate(self.umpires[1:], 1):
                    self.group.tasks[n] = group.create_task(umpire.run(), name=f"umpire[p{n}]")
            result = await self.umpire.run(start_events=starts)
            # Parties end when they see the umpire's end marker; don't wait forever.
            # (Every party may be a person: then there is nothing to wait for.)
            if self._tasks:
                _, pending = await asyncio.wait(self._tasks.values(), timeout=10)
                for task in pending:
                    task.cancel()
        summary = await summarize(
            self.store if self.group is None else MergedLog(self.stores, self.location),
            location=self.location,
            scenario=self.scenario,
            seed=self.seed,
            broker=self.broker.name,
            wall_seconds=monotonic() - began,
        )
        return RunOutcome(summary=summary, result=result, log=self.location)

    def _start_event(self) -> NewEvent:
        return record_exercise_started(
            self.agreement,
            event_id="exercise-started",
            exercise=self.scenario.exercise,
            at=self.scenario.start,
            wallclock=wall_now(),
            scenario=self.scenario.title,
            seed=self.seed,
            signatures=self.signatories.record(),
        )

    async def restart_party(self, party_id: str) -> None:
        """Stop a party's runtime, losing all it held in memory, and start a new one.

        The new runtime starts from nothing: it learns what happened by asking
        the umpire to catch up, and its policy replays to the same plans.
        """
        task = self._tasks[party_id]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # A new connection too: what the old one had buffered is gone with it.
        old = self._transports.pop(party_id)
        await old.__aexit__(None, None, None)
        runtime = await self._runtime(party_id)
        self.runtimes[party_id] = runtime
        assert self._group is not None, "restart_party() is for a running exercise"
        self._tasks[party_id] = self._group.create_task(
            runtime.run(), name=f"party[{party_id}].run"
        )
        log.info("party_restarted", party=party_id)


class Renumbered:
    """What the partitions commit, numbered in one sequence for a watcher of the whole run.

    Each partition numbers its own log, and a watcher (the web console's board, the
    progress line) folds in position order: it is handed every partition's commits in
    the order they were made, numbered 1, 2, … across them, as a merged log numbers.
    """

    def __init__(self, sink: Callable[[Sequence[Event]], None], *, after: int = 0) -> None:
        self.sink = sink
        self.count = after

    def __call__(self, events: Sequence[Event]) -> None:
        first = self.count + 1
        self.count += len(events)
        self.sink([e.model_copy(update={"position": first + n}) for n, e in enumerate(events)])


def _checked_partitions(options: RunOptions, forked: bool) -> int:
    """How many partitions a run's cases are split among (0: one umpire), or why it can't be."""
    count = options.partitions
    if not count:
        return 0
    if not 1 <= count <= MAX_PARTITIONS:
        raise InputError(f"--partitions must be 1 to {MAX_PARTITIONS}, not {count}")
    if options.clock != "realtime":
        raise InputError(
            "--partitions needs --clock realtime: a simulated run advances in rounds that "
            "every party answers, one barrier that one umpire holds"
        )
    if options.log is None or not is_postgres(options.log):
        raise InputError(
            "--partitions needs --log postgresql://…?schema=NAME: each partition's log is "
            "the schema NAME_pN of that database"
        )
    if forked:
        raise InputError("a fork has one umpire: drop --partitions")
    return count


def _absent(path: Path) -> Path | None:
    """`path` if there is no file there yet (small, local: no need to leave the loop)."""
    return None if path.exists() else path


def _ca_file(broker: Broker) -> str | None:
    ca_file = broker.address.ca_file if broker.address.tls else None
    return str(ca_file) if ca_file is not None else None


async def run_exercise(
    scenario: Scenario,
    options: RunOptions,
    *,
    on_commit: Callable[[Sequence[Event]], None] | None = None,
    on_clock: Callable[[Tick], None] | None = None,
) -> RunOutcome:
    async with Exercise(scenario, options, on_commit=on_commit, on_clock=on_clock) as exercise:
        return await exercise.run()
