"""Partitioned umpires: a load run's cases split among umpire processes, one writer a partition.

One umpire is the single writer of a run, so one core bounds it. Here the cases
are split by a stable hash of their id (`partition_of`) into P partitions, each
with its own log (a PostgreSQL schema `{schema}_p{n}`: its own hash chain and
checkpoints) and exactly one writing umpire at a time. Ownership is PostgreSQL's,
not an election of ours: an umpire process takes the first free partition's
advisory lock (`PartitionLease`), claims that partition's log with a fencing
token (`PostgresEventStore.claim`), reads it, and carries on from it. A process
that finds every partition taken is a standby: it keeps trying, and the moment an
owner dies (the server ends its session and so its lock) it takes the partition
over, resumes from the log, and connects with the partition's MQTT session, so
the submissions the broker held for the dead owner reach it. Parties resend what
they saw no commit for; the sequencer's idempotency by message id makes a resend
of something already committed harmless.

Submissions reach their partition's owner by the partition in the submit topic
(`Topics.submit(party, n)`); a submission sent to the wrong partition is refused
with the right one named. Exercise-wide events (the run's start and end) are
partition 0's. Each owner says its partition in what it publishes, since each
partition numbers its own positions.

A process is started with a `PartitionedUmpireSpec` (JSON on stdin:
`python -m simulator.load.umpire_process`, as `simulator load --partitions` does)
or from the command line (`simulator umpire`), which reads the run's description
from the logs. It writes JSON lines on stdout: `standby`, `owner`, `progress`
once a second, then `result`. SIGTERM or SIGINT ends it: an owner finishes its
partition (commits what it has decided), a standby just leaves.
"""

import asyncio
import contextlib
import functools
import os
import resource
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import orjson
import structlog

from simulator.context import ScaledClock, fresh_rng, secret_hex, wall_now
from simulator.errors import InputError
from simulator.eventlog import Event, FencedError, LogError, NewEvent, PostgresEventStore
from simulator.eventlog.lease import PartitionLease
from simulator.lifetime import dying_with_parent
from simulator.load.conversation import load_party
from simulator.load.generator import MAX_INFLIGHT
from simulator.load.heap import frozen_heap
from simulator.load.umpire import UmpireCounters, load_umpire, umpire_stopped
from simulator.logfiles import PARTITIONS_METADATA, open_log, partition_location, split_postgres
from simulator.messaging.topics import Topics
from simulator.protocol import Agreement
from simulator.records import EXERCISE_ENDED, read_ended, record_exercise_started
from simulator.transport import BrokerAddress, SessionSettings, Transport, client_id_for
from simulator.umpire import Umpire, UmpireSettings
from simulator.umpire.sequencer import Sequencer

log = structlog.get_logger("simulator.load.partitioned")

# The metadata key under which each partition's log describes the run (JSON).
RUN_METADATA = "load.run"
# How often a standby tries the partitions, and an owner asks whether it still owns its own.
STANDBY_POLL_S = 0.25
HELD_CHECK_S = 1.0

Emit = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class PartitionedUmpireSpec:
    """Everything an umpire process of a partitioned run needs (JSON on its stdin)."""

    exercise: str
    run_id: str
    # The broker, as a URL with the umpire's credentials (several nodes: a cluster).
    broker: str
    # The run's log, a postgresql:// URL: each partition's schema is `{schema}_p{n}`.
    log: str
    partitions: int
    parties: tuple[str, ...]
    gateways: dict[str, list[str]] = field(default_factory=dict)
    seed: int = 1
    # This process's name, in its fencing token and its log lines.
    name: str = "umpire"
    max_qos: int = 2
    max_payload: int | None = None
    connect_timeout_s: float = 30.0

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PartitionedUmpireSpec":
        data = dict(data)
        data["parties"] = tuple(data["parties"])
        return cls(**data)

    def run_description(self) -> str:
        """What each partition's log records of the run, for an umpire that joins later."""
        return orjson.dumps(
            {
                "exercise": self.exercise,
                "run_id": self.run_id,
                "partitions": self.partitions,
                "parties": self.parties,
                "gateways": self.gateways,
                "seed": self.seed,
            }
        ).decode()


async def create_partition_logs(spec: PartitionedUmpireSpec) -> None:
    """Each partition's log, new and empty, describing the run (the parent does this first)."""
    for partition in range(spec.partitions):
        location = partition_location(spec.log, partition)
        async with open_log(location, create=True, now=wall_now) as store:
            if await store.head() > 0:
                raise InputError(f"{location}: already holds a run; choose a new --log")
            await store.set_metadata("exercise", spec.exercise)
            await store.set_metadata("kind", "load")
            await store.set_metadata("partition", str(partition))
            await store.set_metadata(PARTITIONS_METADATA, str(spec.partitions))
            await store.set_metadata(RUN_METADATA, spec.run_description())


async def spec_from_log(log_url: str, broker: str, name: str) -> PartitionedUmpireSpec:
    """Join a run already under way: its description, read from partition 0's log."""
    location = partition_location(log_url, 0)
    try:
        async with open_log(location, read_only=True) as store:
            described = await store.get_metadata(RUN_METADATA)
            head = await store.head()
            last = [event async for event in store.read(head, head)] if head else []
    except LogError as exc:
        raise InputError(
            f"{log_url}: no partitioned run there to join (its partition 0's log: {exc})"
        ) from exc
    if described is None:
        raise InputError(f"{location}: not the log of a partitioned run (no {RUN_METADATA!r})")
    if last and last[0].type == EXERCISE_ENDED:
        # Its broker went with it: a joiner would wait out its connect timeout, then
        # own a partition of a run nobody sends to any more.
        raise InputError(
            f"{log_url}: this run ended at {last[0].time:%Y-%m-%d %H:%M:%S} UTC "
            f"({read_ended(last[0]).reason}): there is nothing to join"
        )
    run = orjson.loads(described)
    return PartitionedUmpireSpec(
        exercise=run["exercise"],
        run_id=run["run_id"],
        broker=broker,
        log=log_url,
        partitions=int(run["partitions"]),
        parties=tuple(run["parties"]),
        gateways=run.get("gateways", {}),
        seed=int(run.get("seed", 1)),
        name=name,
    )


class PartitionUmpire:
    """One umpire process: standby until it owns a partition, then its single writer."""

    def __init__(self, spec: PartitionedUmpireSpec, emit: Emit) -> None:
        self.spec = spec
        self.emit = emit
        self.stopping = asyncio.Event()
        self.topics = Topics(spec.exercise, partitions=spec.partitions)
        self.counters = UmpireCounters()
        self.token = f"{spec.name}:{os.getpid()}:{secret_hex(4)}"
        self.log = log.bind(exercise=spec.exercise, umpire=spec.name)

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> dict[str, Any]:
        """Own a partition until told to stop (or until it is lost); the result to report."""
        lease = await self._take_a_partition()
        if lease is None:
            return {"partition": None, "reason": "stopped while a standby"}
        try:
            return await self._own(lease)
        finally:
            # Already open and held (entering it again would open a second session
            # and drop the one that holds the lock).
            await lease.close()

    async def _take_a_partition(self) -> PartitionLease | None:
        """The lease of the first free partition, waiting as a standby while all are owned."""
        url = split_postgres(self.spec.log)[0]
        said_standby = False
        async with contextlib.AsyncExitStack() as stack:
            leases = [
                await stack.enter_async_context(PartitionLease(url, self.spec.exercise, n))
                for n in range(self.spec.partitions)
            ]
            while not self.stopping.is_set():
                for lease in leases:
                    if await lease.try_acquire():
                        # Handed out of the stack: the caller holds it open; the rest close.
                        stack.pop_all()
                        for other in leases:
                            if other is not lease:
                                await other.close()
                        return lease
                if not said_standby:
                    said_standby = True
                    self.emit("standby", {"name": self.spec.name})
                    self.log.info("standby", partitions=self.spec.partitions)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), STANDBY_POLL_S)
        return None

    async def _own(self, lease: PartitionLease) -> dict[str, Any]:
        spec = self.spec
        partition = lease.partition
        location = partition_location(spec.log, partition)
        async with contextlib.AsyncExitStack() as stack:
            # As the runner's own umpire: a run's heap grows fast (`simulator.load.heap`).
            await stack.enter_async_context(frozen_heap())
            store = await stack.enter_async_context(open_log(location, now=wall_now))
            assert isinstance(store, PostgresEventStore)
            # From here on nothing a previous owner still sends can reach the log.
            await store.claim(self.token)
            prefix: list[Event] = [event async for event in store.read()]
            address = BrokerAddress.from_url(spec.broker)
            transport = Transport(
                address,
                # The partition's own session, persistent: what the broker held for a
                # dead owner is delivered to the one that takes its partition over.
                SessionSettings(client_id_for(spec.exercise, f"ump{partition}", spec.run_id)),
                rng=fresh_rng(),
                credentials=address.credentials,
                connect_timeout=spec.connect_timeout_s,
                publish_timeout=120.0,
                max_buffered=20_000,
                max_inflight=MAX_INFLIGHT,
                max_qos=spec.max_qos,
                max_payload=spec.max_payload,
            )
            await stack.enter_async_context(transport)
            umpire, opening = self._umpire(partition, store, transport, fresh=not prefix)
            umpire.resume(prefix)
            await umpire.listen()
            self.emit(
                "owner",
                {
                    "name": spec.name,
                    "partition": partition,
                    "resumed": len(prefix),
                    "pid": os.getpid(),
                },
            )
            self.log.info("owner", partition=partition, resumed=len(prefix))
            task = asyncio.create_task(umpire.run(opening), name=f"umpire[p{partition}]")
            lost = False
            failure: str | None = None
            try:
                while not task.done():
                    if self.stopping.is_set():
                        umpire.stop("the load generators finished")
                        # Its end goes out over the broker: bounded if the broker is gone.
                        failure = await umpire_stopped(task, transport, address.display)
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self.stopping.wait()), HELD_CHECK_S)
                    self.emit("progress", self._progress(partition, umpire.head))
                    if not await lease.held():
                        # Its PostgreSQL session is gone, so a standby may own the partition
                        # now: stop at once (the fencing token refuses our appends anyway).
                        lost = True
                        task.cancel()
                        await _fenced(task)
                        break
                if await _fenced(task):
                    lost = True
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            result = self._progress(partition, umpire.head)
            result.update(
                rejections=umpire.rejections, lost=lost, resumed=len(prefix), failure=failure
            )
            return result

    def _umpire(
        self, partition: int, store: PostgresEventStore, transport: Transport, *, fresh: bool
    ) -> tuple[Umpire, list[NewEvent]]:
        """The load umpire of `partition`, and the run's opening if it is partition 0's to make."""
        spec = self.spec
        parties = list(spec.parties)
        agreement = Agreement.of([load_party(p) for p in parties])
        start = wall_now()
        umpire = load_umpire(
            counters=self.counters,
            sequencer=Sequencer(agreement, spec.exercise, wallclock=wall_now),
            store=store,
            bus=transport,
            topics=self.topics,
            parties=parties,
            reporting=(),
            clock=ScaledClock(start),
            end=start + timedelta(days=365),
            settings=UmpireSettings(
                simulated=False, tick_s=0.05, max_batch=2000, partition=partition
            ),
            gateways=spec.gateways,
        )
        if partition != 0 or not fresh:
            return umpire, []
        opening = record_exercise_started(
            agreement,
            event_id="exercise-started",
            exercise=spec.exercise,
            at=start,
            wallclock=wall_now(),
            scenario="load test",
            seed=spec.seed,
        )
        return umpire, [opening]

    def _progress(self, partition: int, head: int) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "name": self.spec.name,
            "partition": partition,
            "head": head,
            "mqtt_in": self.counters.mqtt_in,
            "mqtt_out": self.counters.mqtt_out,
            "submissions": self.counters.submissions,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        }


async def _fenced(task: "asyncio.Task[Any]") -> bool:
    """Wait for an umpire's task to end; True if it ended because its log was claimed.

    Another umpire claimed the partition's log (this one's lease session was cut
    while it lived on): nothing of ours was written after that, and the partition
    is the new owner's. Cancelled is an end too; any other failure is raised.
    """
    try:
        await task
    except asyncio.CancelledError:
        if task.cancelled():
            return False
        raise  # this coroutine's own cancellation
    except FencedError:
        return True
    except BaseExceptionGroup as group:  # the umpire's task groups wrap what they raise
        fenced, rest = group.split(FencedError)
        if rest is not None:
            raise
        return fenced is not None
    return False


async def serve(spec: PartitionedUmpireSpec, emit: Emit) -> dict[str, Any]:
    """Run one umpire process until SIGTERM or SIGINT (see the module docstring)."""
    umpire = PartitionUmpire(spec, emit)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, umpire.stop)
    try:
        return await umpire.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


class UmpireProcess:
    """One umpire process as its parent sees it: its lines, its role, its result."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.partition: int | None = None
        self.standby = False
        self.latest: dict[str, Any] = {}
        self.result: dict[str, Any] | None = None
        self.failure: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ended_early(self) -> bool:
        """Exited without a result: it did not stop as asked, nor lose its partition."""
        return self.process.returncode is not None and self.result is None

    async def read(self, owned: Callable[[int, str], None]) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            message = orjson.loads(line)
            kind, payload = message["kind"], message["payload"]
            if kind == "owner":
                self.partition, self.standby = payload["partition"], False
                owned(payload["partition"], self.name)
            elif kind == "standby":
                self.standby = True
            elif kind == "progress":
                self.latest = payload
            elif kind == "result":
                self.result = payload
            else:
                self.failure = str(payload)
        await self.process.wait()


class UmpireFleet:
    """The umpire processes of a partitioned load run, started and stopped by its parent.

    `owners` and `standbys` are what the processes last said; `head` and `counters`
    add up the partitions' (a run's live progress reads them as it reads one umpire's).
    """

    def __init__(self, spec: PartitionedUmpireSpec, standbys: int) -> None:
        self.spec = spec
        self.standbys = standbys
        self.processes: list[UmpireProcess] = []
        self._readers: list[asyncio.Task[None]] = []
        # Every process that has owned each partition, in order (a takeover adds one).
        self.owner_history: dict[int, list[str]] = {}
        # Processes killed on purpose (a drill): their end is not a failure.
        self.killed: set[str] = set()

    async def __aenter__(self) -> "UmpireFleet":
        for index in range(self.spec.partitions + self.standbys):
            await self._start(index)
            # Owners first, in order, so that partition n is normally umpire-n's.
            if index < self.spec.partitions:
                await self._wait(functools.partial(self._owners_at_least, index + 1))
        await self._wait(lambda: all(p.partition is not None or p.standby for p in self.processes))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.process.returncode is None:
                process.process.kill()
        for task in self._readers:
            task.cancel()
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                await process.process.wait()

    async def _start(self, index: int) -> None:
        name = f"umpire-{index}"
        spec = PartitionedUmpireSpec(**{**asdict(self.spec), "name": name})
        process = await asyncio.create_subprocess_exec(
            # Killed outright, the run takes its umpires with it.
            *dying_with_parent([sys.executable, "-m", "simulator.load.umpire_process"]),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # A terminal's Ctrl-C stops the run's offering, not its umpires.
            start_new_session=True,
        )
        assert process.stdin is not None
        process.stdin.write(spec.to_json())
        process.stdin.close()
        handle = UmpireProcess(name, process)
        self.processes.append(handle)
        self._readers.append(
            asyncio.create_task(handle.read(self._owned), name=f"load.{name}.read")
        )

    def _owners_at_least(self, count: int) -> bool:
        return sum(p.partition is not None for p in self.processes) >= count

    def _owned(self, partition: int, name: str) -> None:
        self.owner_history.setdefault(partition, []).append(name)

    async def _wait(self, condition: Callable[[], bool], seconds: float = 60.0) -> None:
        """Until `condition` holds; a process that fails or exits meanwhile is the error."""
        # Polled: the condition is over what the processes last said, read by other tasks.
        async with asyncio.timeout(seconds):
            while not condition():
                failed = [
                    p
                    for p in self.processes
                    if p.name not in self.killed
                    and (p.failure or p.process.returncode not in (None, 0) or p.ended_early)
                ]
                if failed:
                    first = failed[0]
                    raise InputError(
                        f"{first.name} failed: "
                        f"{first.failure or f'exited ({first.process.returncode})'}"
                    )
                await asyncio.sleep(0.05)

    def owner(self, partition: int) -> UmpireProcess:
        """The process that owns `partition` now (the last to say so, still running)."""
        for process in reversed(self.processes):
            if process.partition == partition and process.process.returncode is None:
                return process
        raise LookupError(f"no running umpire owns partition {partition}")

    async def wait_owned(
        self, partition: int, *, not_by: str | None = None, seconds: float = 60.0
    ) -> UmpireProcess:
        """The owner of `partition` once there is one (other than `not_by`): a takeover."""

        def found() -> bool:
            with contextlib.suppress(LookupError):
                return self.owner(partition).name != not_by
            return False

        await self._wait(found, seconds)
        return self.owner(partition)

    def kill(self, partition: int) -> UmpireProcess:
        """SIGKILL the owner of `partition` (a drill: its standby should take it over)."""
        victim = self.owner(partition)
        self.killed.add(victim.name)
        victim.process.kill()
        return victim

    @property
    def head(self) -> int:
        """Committed events in all partitions (each partition's head, added up)."""
        heads: dict[int, int] = {}
        for process in self.processes:
            latest = process.result or process.latest
            if "partition" in latest and latest["partition"] is not None:
                heads[latest["partition"]] = max(heads.get(latest["partition"], 0), latest["head"])
        return sum(heads.values())

    @property
    def counters(self) -> UmpireCounters:
        total = UmpireCounters()
        for process in self.processes:
            latest = process.result or process.latest
            total.mqtt_in += int(latest.get("mqtt_in", 0))
            total.mqtt_out += int(latest.get("mqtt_out", 0))
            total.submissions += int(latest.get("submissions", 0))
        return total

    async def stop(self, seconds: float = 60.0) -> list[str]:
        """SIGTERM to every process; what went wrong, if anything (each owner's own words)."""
        for process in self.processes:
            if process.process.returncode is None:
                process.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await asyncio.gather(*(p.process.wait() for p in self.processes))
        failures = []
        for process in self.processes:
            if process.process.returncode is None:
                process.process.kill()
                failures.append(f"{process.name} did not stop within {seconds:.0f} s")
            elif process.failure:
                failures.append(f"{process.name}: {process.failure}")
            elif process.result and process.result.get("failure"):
                failures.append(f"{process.name}: {process.result['failure']}")
        # A partition no process finished: its owner died (SIGKILL, a crash) with no
        # standby to take it over. Its cases are not late but abandoned: the run failed
        # (it had been reported as saturated, exit 3, with the machine all but idle).
        finished = {p.result.get("partition") for p in self.processes if p.result}
        by_name = {p.name: p for p in self.processes}
        for partition in range(self.spec.partitions):
            if partition in finished:
                continue
            owners = self.owner_history.get(partition, [])
            last = by_name.get(owners[-1]) if owners else None
            ended = (
                f"{last.name} ended without finishing it (exit {last.process.returncode})"
                if last is not None
                else "no umpire ever owned it"
            )
            failures.append(
                f"partition {partition} was left unfinished: {ended}, and no standby took it "
                "over; its log holds what was committed"
            )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await asyncio.gather(*self._readers, return_exceptions=True)
        return failures

    @property
    def rejections(self) -> int:
        return sum(int((p.result or {}).get("rejections", 0)) for p in self.processes)

    @property
    def cpu_s(self) -> float:
        return sum(float((p.result or p.latest).get("cpu_s", 0.0)) for p in self.processes)


__all__ = [
    "RUN_METADATA",
    "PartitionUmpire",
    "PartitionedUmpireSpec",
    "UmpireFleet",
    "UmpireProcess",
    "create_partition_logs",
    "serve",
    "spec_from_log",
]
