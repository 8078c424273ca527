"""A load run: broker, durable log, the umpire, and load generators in their own processes.

The parent process runs the umpire (and the embedded broker, if chosen);
`--processes` generator processes each hold some of the party pairs. When
the generators are done (their schedule over and every case finished, or
the drain time up) the umpire stops and the log is reconciled: every
message a generator submitted must be in the log exactly once; whatever
is missing is lost, whatever is there twice is duplicated, and rejections
of our own submissions are counted. The log decides, never a broker.

A run offered more than it carries ends all the same: offering stops at the
schedule's end, the drain is bounded, and the cases still open then are
unfinished, not lost. Of an open case only its last submission can be
missing from the log without a loss (each step is sent once the previous
one was seen committed), and its commits not yet seen by their recipient
are in flight; anything else missing is lost.
"""

import asyncio
import contextlib
import logging
import math
import os
import resource
import shlex
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import structlog
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from simulator.brokers import (
    Broker,
    MosquittoBroker,
    exercise_principals,
    start_broker,
    transport_for,
)
from simulator.context import ScaledClock, fresh_rng, monotonic, secret_hex, wall_now
from simulator.errors import InputError
from simulator.eventlog import InspectableStore
from simulator.lifetime import dying_with_parent, private_workdir
from simulator.load.conversation import PATHS, Mix, load_party
from simulator.load.generator import (
    MAX_INFLIGHT,
    OFFER_GRACE_S,
    PUBLISH_GRACE_S,
    GeneratorResult,
    GeneratorSpec,
    new_histogram,
    result_from_json,
)
from simulator.load.heap import frozen_heap
from simulator.load.interrupt import Interruption
from simulator.load.ledger import OPEN, PATH_NAMES, LogLedger
from simulator.load.report import LoadReport, cpu_use, latency_summary, saturation_summary
from simulator.load.umpire import UmpireCounters, load_umpire, umpire_stopped
from simulator.logfiles import is_postgres, open_log, partition_location, writing
from simulator.messaging.topics import MAX_PARTITIONS, Topics
from simulator.protocol import Agreement
from simulator.records import CLOCK_ELAPSED, MESSAGE_PREFIX, REJECTION, record_exercise_started
from simulator.run.security import SecurityOptions, broker_tls
from simulator.transport import SessionSettings, client_id_for
from simulator.umpire import UmpireSettings
from simulator.umpire.sequencer import Sequencer

if TYPE_CHECKING:
    from simulator.load.partitioned import UmpireFleet

log = structlog.get_logger("simulator.load")


@dataclass
class LoadOptions:
    parties: int = 10
    rate: float = 50.0
    duration_s: float = 10.0
    broker: str = "embedded"
    qos: int = 1
    processes: int = 1
    payload_bytes: int = 0
    mix: Mix = field(default_factory=Mix)
    one_per_message: bool = False
    # A connection per party even in the batched mode (default: one gateway per process).
    per_party: bool = False
    log: str | None = None
    seed: int = 1
    drain_s: float = 10.0
    resend_after_s: float = 2.0
    case_deadline_s: float = 1.0
    # How long every connection waits for the broker before the run gives up (exit 2):
    # long enough for a node that restarts; a broker that is simply not there costs it.
    connect_timeout_s: float = 30.0
    workdir: Path | None = None
    # TLS-only broker with generated certificates and a restricted observer (README: Security).
    secure: bool = False
    # The cases split among this many umpire processes, plus standbys that take over a
    # partition whose owner dies (`simulator.load.partitioned`; needs a PostgreSQL log).
    partitions: int = 1
    standbys: int = 0
    # How to start the generator processes elsewhere: commands that run
    # `python -m simulator.load.worker` on another host (`ssh gen1 /srv/coop/.venv/bin/python
    # -m simulator.load.worker`), taken in turn; none: on this machine. The spec goes over
    # the command's stdin and the results come back on its stdout, as they do locally.
    worker_commands: tuple[str, ...] = ()

    @property
    def partitioned(self) -> bool:
        """Whether umpire processes of their own decide (several, or one with standbys)."""
        return self.partitions > 1 or self.standbys > 0

    @property
    def gateways(self) -> bool:
        """Whether each generator process speaks through one gateway connection."""
        return not (self.per_party or self.one_per_message)

    @property
    def mode(self) -> str:
        if self.one_per_message:
            return "one-per-message"
        return "batched per party" if self.per_party else "batched via gateways"

    def check(self) -> None:
        if self.parties < 2 or self.parties % 2:
            raise InputError(f"--parties must be an even number >= 2, not {self.parties}")
        if self.parties > MAX_PARTIES:
            raise InputError(f"--parties must be at most {MAX_PARTIES:,}, not {self.parties}")
        # NaN and infinity pass `<= 0` and had crashed the generators (NaN went as null).
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise InputError(f"--rate must be a positive number, not {self.rate}")
        if not 0 < self.duration_s <= 24 * 3600:
            raise InputError(f"--duration must be in (0, 86400] seconds, not {self.duration_s}")
        if self.rate * self.duration_s < 1:
            raise InputError(
                f"--rate {self.rate:g} for --duration {self.duration_s:g} s starts no case: "
                "a run needs at least one"
            )
        if not (math.isfinite(self.drain_s) and self.drain_s >= 0):
            raise InputError(f"--drain must be 0 or more seconds, not {self.drain_s}")
        if not (math.isfinite(self.case_deadline_s) and self.case_deadline_s > 0):
            raise InputError(
                f"--case-deadline must be a positive number of seconds, not {self.case_deadline_s}"
            )
        if self.qos not in (0, 1, 2):
            raise InputError(f"--qos must be 0, 1 or 2, not {self.qos}")
        if not 1 <= self.processes <= 64:
            raise InputError(f"--processes must be 1..64, not {self.processes}")
        if self.processes > self.parties // 2:
            raise InputError(
                f"--processes {self.processes} is more than the {self.parties // 2} party pairs"
            )
        if not 0 <= self.payload_bytes <= 200_000:
            raise InputError(f"--payload-bytes must be 0..200000, not {self.payload_bytes}")
        if self.per_party and self.one_per_message:
            raise InputError("--one-per-message already connects every party on its own")
        if not 1 <= self.partitions <= MAX_PARTITIONS:
            raise InputError(f"--partitions must be 1..{MAX_PARTITIONS}, not {self.partitions}")
        for command in self.worker_commands:
            if not shlex.split(command):
                raise InputError("--worker-command must not be empty")
        if not 0 <= self.standbys <= 16:
            raise InputError(f"--standbys must be 0..16, not {self.standbys}")
        if self.partitioned and not (self.log and is_postgres(self.log)):
            raise InputError(
                "--partitions and --standbys need --log postgresql://…: each partition's "
                "log and its ownership are kept in PostgreSQL"
            )


# More parties than this took minutes only to connect (8,000: 40 s; 100,000 never started).
MAX_PARTIES = 10_000

# Called with the broker once the run is under way (fault drills in tests).
DuringRun = Callable[[Broker], Awaitable[None]]
# Called with the umpire processes of a partitioned run once it is under way.
DuringUmpires = Callable[["UmpireFleet"], Awaitable[None]]
ProgressHook = Callable[[dict[str, Any]], None]
# Puts something between the started broker and every client of the run (fault drills
# put a fault proxy there); what it yields is the broker they connect to.
Through = Callable[[Broker], contextlib.AbstractAsyncContextManager[Broker]]
# Puts something between the umpire and its log (a drill's slow disk): what it returns
# is the store the umpire appends to; the reconciliation reads the log itself.
LogThrough = Callable[[InspectableStore], InspectableStore]


async def run_load(
    options: LoadOptions,
    *,
    broker: Broker | None = None,
    during: DuringRun | None = None,
    on_progress: ProgressHook | None = None,
    through: Through | None = None,
    log_through: LogThrough | None = None,
    during_umpires: DuringUmpires | None = None,
    interruption: Interruption | None = None,
) -> LoadReport:
    options.check()
    # aiomqtt warns about every publish beyond 10 awaiting a PUBACK; a load run has
    # thousands in flight by design.
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    parties = [f"p{i:03d}" for i in range(options.parties)]
    pairs = [(parties[i], parties[i + 1]) for i in range(0, len(parties), 2)]
    groups = _split(pairs, options.processes)
    # Gateway k speaks for the parties of generator k (a message switch's connection):
    # a principal of its own, with a party's topics, so the brokers' ACLs apply as is.
    gateways = (
        {_gateway(k): [p for pair in group for p in pair] for k, group in enumerate(groups)}
        if options.gateways
        else {}
    )
    principals = parties + list(gateways)
    exercise = f"load-{secret_hex(4)}"
    # A partitioned run's ACLs let each party publish to the run's partitions.
    topics = Topics(exercise, partitions=options.partitions if options.partitioned else 0)
    run_id = secret_hex(3)
    async with contextlib.AsyncExitStack() as stack:
        workdir = options.workdir or stack.enter_context(private_workdir("simulator-load-"))
        location = options.log or str(workdir / f"{exercise}.db")
        if broker is None:
            tls = broker_tls(workdir / "broker", exercise, SecurityOptions(options.secure))
            if options.broker == "mosquitto":
                # Saved once a second rather than after every change: see brokers/mosquitto.conf.
                chosen: Broker = MosquittoBroker(
                    topics,
                    exercise_principals(principals),
                    workdir=workdir / "broker",
                    autosave_on_changes=False,
                    tls=tls,
                    restricted_observer=options.secure,
                )
            else:
                chosen = start_broker(
                    options.broker,
                    topics,
                    principals,
                    workdir / "broker",
                    tls=tls,
                    restricted_observer=options.secure,
                )
            broker = await stack.enter_async_context(chosen)
        if through is not None:
            broker = await stack.enter_async_context(through(broker))
        if options.partitioned:
            return await _run_partitioned(
                options,
                stack,
                broker,
                topics,
                run_id,
                groups,
                gateways,
                parties,
                (during, during_umpires, on_progress),
                interruption,
            )
        # Its one writer for the run's life, as an exercise's (`logfiles.writing`).
        await stack.enter_async_context(writing(location))
        store = await stack.enter_async_context(open_log(location, create=True, now=wall_now))
        if await store.head() > 0:
            raise InputError(f"{location}: already holds a run; choose a new --log")
        await store.set_metadata("exercise", exercise)
        await store.set_metadata("kind", "load")
        umpire_bus = transport_for(
            broker,
            "umpire",
            SessionSettings(client_id_for(exercise, "umpire", run_id)),
            rng=fresh_rng(),
            connect_timeout=options.connect_timeout_s,
            publish_timeout=120.0,
            max_buffered=20_000,
            max_inflight=MAX_INFLIGHT,
        )
        await stack.enter_async_context(umpire_bus)
        agreement = Agreement.of([load_party(p) for p in parties])
        start = wall_now()
        counters = UmpireCounters()
        umpire = load_umpire(
            counters=counters,
            sequencer=Sequencer(agreement, exercise, wallclock=wall_now),
            store=log_through(store) if log_through is not None else store,
            bus=umpire_bus,
            topics=topics,
            parties=parties,
            reporting=(),
            clock=ScaledClock(start),
            end=start + timedelta(days=365),
            settings=UmpireSettings(simulated=False, tick_s=0.05, max_batch=2000),
            gateways=gateways,
        )
        opening = record_exercise_started(
            agreement,
            event_id="exercise-started",
            exercise=exercise,
            at=start,
            wallclock=wall_now(),
            scenario="load test",
            seed=options.seed,
        )
        await stack.enter_async_context(frozen_heap())
        umpire_task = asyncio.create_task(umpire.run([opening]), name="load.umpire")
        cpu_before = _cpu_seconds(broker)
        try:
            results, timeline, wall = await _generate(
                options,
                broker,
                topics,
                run_id,
                groups,
                _Live(lambda: umpire.head, lambda: counters),
                (during, None, on_progress),
                interruption=interruption,
            )
        finally:
            umpire.stop("the load generators finished")
            failure = await umpire_stopped(umpire_task, umpire_bus, broker.name)
        report = _reconcile(
            location,
            await _log_facts([store], results),
            options,
            results,
            counters,
            wall,
            timeline,
            broker=broker.name,
        )
        report.umpire_rejections = umpire.rejections
        report.failure = failure
        _add_cpu(report, options, cpu_before, _cpu_seconds(broker), results)
        return report


async def _run_partitioned(
    options: LoadOptions,
    stack: contextlib.AsyncExitStack,
    broker: Broker,
    topics: Topics,
    run_id: str,
    groups: list[tuple[tuple[str, str], ...]],
    gateways: dict[str, list[str]],
    parties: list[str],
    hooks: "tuple[DuringRun | None, DuringUmpires | None, ProgressHook | None]",
    interruption: Interruption | None = None,
) -> LoadReport:
    """The run with its cases split among umpire processes (`simulator.load.partitioned`)."""
    # Imported here: psycopg costs a tenth of a second every other command would pay.
    from simulator.load.partitioned import (  # noqa: PLC0415
        PartitionedUmpireSpec,
        UmpireFleet,
        create_partition_logs,
    )

    assert options.log is not None
    spec = PartitionedUmpireSpec(
        exercise=topics.exercise,
        run_id=run_id,
        broker=_umpire_url(broker),
        log=options.log,
        partitions=options.partitions,
        parties=tuple(parties),
        gateways=gateways,
        seed=options.seed,
        max_qos=broker.max_qos,
        max_payload=broker.message_size_limit,
        connect_timeout_s=options.connect_timeout_s,
    )
    await create_partition_logs(spec)
    cpu_before = _cpu_seconds(broker)
    fleet = await stack.enter_async_context(UmpireFleet(spec, options.standbys))
    try:
        results, timeline, wall = await _generate(
            options,
            broker,
            topics,
            run_id,
            groups,
            _Live(lambda: fleet.head, lambda: fleet.counters),
            hooks,
            fleet,
            interruption=interruption,
        )
    finally:
        failures = await fleet.stop()
    stores = [
        await stack.enter_async_context(
            open_log(partition_location(options.log, n), read_only=True)
        )
        for n in range(options.partitions)
    ]
    report = _reconcile(
        options.log,
        await _log_facts(stores, results),
        options,
        results,
        fleet.counters,
        wall,
        timeline,
        broker=broker.name,
    )
    report.umpire_rejections = fleet.rejections
    report.failure = "; ".join(failures) or None
    report.extra["partitions"] = {
        "count": options.partitions,
        "standbys": options.standbys,
        "logs": [partition_location(options.log, n) for n in range(options.partitions)],
        # Every process that owned each partition, in order: more than one is a takeover.
        "owners": {str(n): fleet.owner_history.get(n, []) for n in range(options.partitions)},
    }
    _add_cpu(report, options, cpu_before, _cpu_seconds(broker), results, umpires_s=fleet.cpu_s)
    return report


def _umpire_url(broker: Broker) -> str:
    """The broker as a URL carrying the umpire's credentials (for its own processes)."""
    address = broker.address
    user, password = broker.credentials("umpire")
    nodes = ",".join(f"{node.host}:{node.port}" for node in address.nodes)
    query = f"?ca_file={quote(str(address.ca_file))}" if address.ca_file else ""
    scheme = "mqtts" if address.tls else "mqtt"
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{nodes}{query}"


def _add_cpu(
    report: LoadReport,
    options: LoadOptions,
    before: tuple[float, float | None],
    after: tuple[float, float | None],
    results: list[GeneratorResult],
    *,
    umpires_s: float | None = None,
) -> None:
    generators = sum(r.counters.get("cpu_ms", 0) for r in results) / 1000
    mine = round(after[0] - before[0], 3)
    cpu = {
        # The umpire's process; it hosts the embedded broker too when that is the broker.
        # Partitioned: the umpire processes', and the runner's own apart.
        "umpire": mine if umpires_s is None else round(umpires_s, 3),
        "generators": round(generators, 3),
    }
    if umpires_s is not None:
        cpu["runner"] = mine
    if after[1] is not None and before[1] is not None:
        cpu["broker"] = round(after[1] - before[1], 3)
    report.extra["cpu_s"] = cpu
    report.extra["cpu_ms_per_event"] = {
        k: round(v * 1000 / max(report.events, 1), 4) for k, v in cpu.items()
    }
    report.extra["cpu_use"] = cpu_use(
        cpu,
        report.wall_s,
        {"umpire": options.partitions, "generators": options.processes},
        len(os.sched_getaffinity(0)),
        # Generators started by a command of the user's may run on other machines.
        elsewhere=("generators",) if options.worker_commands else (),
    )


def _cpu_seconds(broker: Broker) -> tuple[float, float | None]:
    """CPU seconds used so far by this process and by the broker's (when we run it).

    CPU time per event, unlike a rate, means something on a shared, busy machine.
    A restarted broker counts from its restart.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    mine = usage.ru_utime + usage.ru_stime
    pid = broker.pid if isinstance(broker, MosquittoBroker) else None
    if pid is None:
        return mine, None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return mine, None
    ticks = os.sysconf("SC_CLK_TCK")
    return mine, (int(fields[11]) + int(fields[12])) / ticks


def _gateway(index: int) -> str:
    """The principal generator `index` speaks through in the gateway mode."""
    return f"gateway-{index}"


def _split(pairs: list[tuple[str, str]], processes: int) -> list[tuple[tuple[str, str], ...]]:
    return [tuple(pairs[i::processes]) for i in range(processes)]


def _specs(
    options: LoadOptions,
    broker: Broker,
    topics: Topics,
    run_id: str,
    groups: list[tuple[tuple[str, str], ...]],
    pairs: int,
    start_at: float,
) -> list[GeneratorSpec]:
    specs = []
    for index, group in enumerate(groups):
        owned = [p for pair in group for p in pair]
        gateway = _gateway(index) if options.gateways else None
        if gateway is not None:
            owned.append(gateway)
        specs.append(
            GeneratorSpec(
                index=index,
                host=broker.address.host,
                port=broker.address.port,
                # Each client of a cluster starts on the node a hash of its id picks (the
                # transport), so the generators spread over the nodes.
                other_nodes=tuple((n.host, n.port) for n in broker.address.others),
                partitions=topics.partitions,
                tls=broker.address.tls,
                ca_file=str(broker.address.ca_file) if broker.address.ca_file else None,
                exercise=topics.exercise,
                run_id=run_id,
                pairs=group,
                credentials={p: tuple(broker.credentials(p)) for p in owned},  # type: ignore[misc]
                rate=options.rate * len(group) / pairs,
                duration_s=options.duration_s,
                start_at=start_at,
                mix=options.mix.shares(),
                qos=min(options.qos, broker.max_qos),  # NATS 2.9 closes a QoS 2 publisher
                one_per_message=options.one_per_message,
                payload_bytes=options.payload_bytes,
                seed=options.seed,
                drain_s=options.drain_s,
                resend_after_s=options.resend_after_s,
                case_deadline_s=options.case_deadline_s,
                connect_timeout_s=options.connect_timeout_s,
                gateway=gateway,
            )
        )
    return specs


@dataclass(frozen=True)
class _Live:
    """Where the umpire side's live figures come from: one umpire, or a fleet of them."""

    head: Callable[[], int]
    counters: Callable[[], UmpireCounters]


class _Fleet:
    """The generator processes of a run: their progress, results and failures."""

    def __init__(
        self,
        umpire: _Live,
        start_at: float,
        on_progress: ProgressHook | None,
        worker_commands: tuple[str, ...] = (),
        interruption: Interruption | None = None,
    ):
        self.umpire = umpire
        self.interruption = interruption
        self.worker_commands = worker_commands
        self.start_at = start_at
        self.on_progress = on_progress
        self.results: dict[int, GeneratorResult] = {}
        self.latest: dict[int, dict[str, Any]] = {}
        self.timeline: list[dict[str, Any]] = []
        self.failures: list[str] = []

    async def generator(self, spec: GeneratorSpec) -> None:
        process = await asyncio.create_subprocess_exec(
            # Killed outright, the run takes its generators with it.
            *dying_with_parent(self._worker_argv(spec.index)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=256 * 1024 * 1024,
            # A terminal's Ctrl-C reaches the run, which tells the generators in order.
            start_new_session=True,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            process.stdin.write(orjson.dumps(spec))
            process.stdin.close()
            async for line in process.stdout:
                message = orjson.loads(line)
                if message["kind"] == "progress":
                    self.latest[spec.index] = message["payload"]
                elif message["kind"] == "ready":
                    # It hears signals now (before, SIGTERM would have killed it).
                    if self.interruption is not None:
                        self.interruption.watch(process)
                elif message["kind"] == "result":
                    self.results[spec.index] = result_from_json(message["payload"])
                else:
                    self.failures.append(f"load generator {spec.index}: {message['payload']}")
            await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if spec.index not in self.results and not self.failures:
            self.failures.append(
                f"load generator {spec.index} exited ({process.returncode}) without a result"
            )

    def _worker_argv(self, index: int) -> list[str]:
        """How generator `index` is started: here, or by the next of `worker_commands`."""
        if not self.worker_commands:
            return [sys.executable, "-m", "simulator.load.worker"]
        return shlex.split(self.worker_commands[index % len(self.worker_commands)])

    def _sum(self, key: str) -> int:
        return sum(int(p[key]) for p in self.latest.values())

    async def watch(self) -> None:
        """Live progress once a second: the umpire's head and the generators' counts."""
        umpire = self.umpire
        last_tick, last_head = monotonic(), umpire.head()
        last_started = 0
        while True:
            await asyncio.sleep(1.0)
            now = monotonic()
            head = umpire.head()
            counters = umpire.counters()
            if now >= self.start_at:
                started = self._sum("cases_started")
                snapshot = {
                    "t": round(now - self.start_at, 1),
                    "events_per_s": round((head - last_head) / (now - last_tick), 1),
                    "head": head,
                    # What was offered in the second: cases the generators started.
                    "started_per_s": round((started - last_started) / (now - last_tick), 1),
                    "cases_started": started,
                    "cases_completed": self._sum("cases_completed"),
                    "open": self._sum("open"),
                    "p99_ms": max((p["p99_ms"] for p in self.latest.values()), default=0.0),
                    "mqtt_in": counters.mqtt_in + self._sum("mqtt_in"),
                    "mqtt_out": counters.mqtt_out + self._sum("mqtt_out"),
                    "resends": self._sum("resends"),
                }
                self.timeline.append(snapshot)
                if self.on_progress is not None:
                    self.on_progress(snapshot)
                last_started = started
            last_tick, last_head = now, head


async def _generate(
    options: LoadOptions,
    broker: Broker,
    topics: Topics,
    run_id: str,
    groups: list[tuple[tuple[str, str], ...]],
    umpire: _Live,
    hooks: "tuple[DuringRun | None, DuringUmpires | None, ProgressHook | None]",
    umpires: "UmpireFleet | None" = None,
    *,
    interruption: Interruption | None = None,
) -> tuple[list[GeneratorResult], list[dict[str, Any]], float]:
    during, during_umpires, on_progress = hooks
    pairs = [pair for group in groups for pair in group]
    # Far enough ahead for every process to import, connect and subscribe.
    start_at = monotonic() + 3.0 + 1.0 * options.processes
    specs = _specs(options, broker, topics, run_id, groups, len(pairs), start_at)
    fleet = _Fleet(umpire, start_at, on_progress, options.worker_commands, interruption)
    # The generators bound themselves (offering stops at the schedule's end, the drain
    # and the last publishes are bounded); past this, one of them is stuck.
    limit = (
        options.duration_s
        + OFFER_GRACE_S
        + options.drain_s
        + PUBLISH_GRACE_S
        + 60
        + (start_at - monotonic())
    )

    async def drill_after_start(during: DuringRun) -> None:
        await asyncio.sleep(max(start_at - monotonic(), 0) + 0.5)
        await during(broker)

    async def umpire_drill_after_start(drill: DuringUmpires, fleet: "UmpireFleet") -> None:
        await asyncio.sleep(max(start_at - monotonic(), 0) + 0.5)
        await drill(fleet)

    try:
        async with asyncio.timeout(limit), asyncio.TaskGroup() as group:
            watcher = group.create_task(fleet.watch(), name="load.watch")
            if during is not None:
                group.create_task(drill_after_start(during), name="load.during")
            if during_umpires is not None and umpires is not None:
                group.create_task(
                    umpire_drill_after_start(during_umpires, umpires), name="load.during_umpires"
                )
            await asyncio.gather(*(fleet.generator(spec) for spec in specs))
            watcher.cancel()
    except TimeoutError:
        raise InputError(f"the load generators did not finish within {limit:.0f} s") from None
    if fleet.failures:
        raise InputError("; ".join(fleet.failures))
    wall = monotonic() - start_at
    return [fleet.results[i] for i in sorted(fleet.results)], fleet.timeline, wall


def _merge(encoded: list[bytes]) -> HdrHistogram:
    total = new_histogram()
    for item in encoded:
        total.add(HdrHistogram.decode(item))
    return total


async def _log_facts(
    stores: list[InspectableStore], results: list[GeneratorResult]
) -> tuple[LogLedger, int, int, int]:
    """(the run's messages the log holds, events, rejections, elapsed).

    Read through the store (SQLite or PostgreSQL alike), as the rows are stored:
    a full `Event` per row would cost several seconds for a long run. What the
    log holds is kept as a bitmask per case, not a set of ids: a few bytes a
    case however long the run.
    """
    committed = LogLedger({r.index: r.cases.started for r in results})
    events = rejections = elapsed = 0
    # Every partition's log, where the cases were split: a message in two of them is
    # as duplicated as a message twice in one.
    for store in stores:
        async for row in store.stored_rows():
            events += 1
            if row.type.startswith(MESSAGE_PREFIX):
                committed.add(orjson.loads(row.body)["data"]["message"]["message_id"])
            elif row.type == REJECTION:
                rejections += 1
            elif row.type == CLOCK_ELAPSED:
                elapsed += 1
    return committed, events, rejections, elapsed


@dataclass
class _Accounts:
    """The reconciliation's counts (see the module docstring)."""

    submitted: int = 0
    lost: int = 0
    undelivered: int = 0
    submissions_in_flight: int = 0
    deliveries_in_flight: int = 0
    paths: Counter[str] = field(default_factory=Counter)


def _account(results: list[GeneratorResult], log: LogLedger) -> _Accounts:
    accounts = _Accounts()
    # Refused with a reason the sender saw: in the log as a rejection, not lost.
    refused = {mid for result in results for mid in result.rejected}
    for result in results:
        ledger, in_log = result.cases, log.committed[result.index]
        for number in range(ledger.started):
            accounts.paths[PATH_NAMES[ledger.path[number]]] += 1
            steps = ledger.submitted[number]
            accounts.submitted += steps
            sent = (1 << steps) - 1
            still_open = ledger.state[number] == OPEN
            missing = sent & ~in_log[number]
            for step in range(steps):
                if missing >> step & 1 and f"g{result.index}-{number}.{step}" not in refused:
                    if still_open and step == steps - 1:
                        accounts.submissions_in_flight += 1
                    else:
                        accounts.lost += 1
            unseen = (sent & in_log[number] & ~ledger.recipient_seen[number]).bit_count()
            if still_open:
                accounts.deliveries_in_flight += unseen
            else:
                accounts.undelivered += unseen
    return accounts


def _reconcile(
    location: str,
    facts: tuple[LogLedger, int, int, int],
    options: LoadOptions,
    results: list[GeneratorResult],
    counters_of_umpire: UmpireCounters,
    wall: float,
    timeline: list[dict[str, Any]],
    *,
    broker: str,
) -> LoadReport:
    committed, events, rejections, elapsed = facts
    accounts = _account(results, committed)
    counters: Counter[str] = Counter()
    for result in results:
        counters.update(result.counters)
    message_hist = _merge([r.message_hist for r in results])
    case_hist = _merge([r.case_hist for r in results])
    per_second: dict[int, list[bytes]] = {}
    for result in results:
        for second, encoded in result.per_second:
            per_second.setdefault(second, []).append(encoded)
    over_time = []
    for second in sorted(per_second):
        hist = _merge(per_second[second])
        over_time.append(
            {
                "t": second,
                "messages": hist.get_total_count(),
                **latency_summary(hist),
            }
        )
    # As the generators scheduled them: each rounds its share of rate x duration.
    expected_cases = counters["cases_scheduled"]
    errors = [e for r in results for e in r.errors]
    report = LoadReport(
        broker=broker,
        log=location,
        parties=options.parties,
        processes=options.processes,
        qos=options.qos,
        mode=options.mode,
        payload_bytes=options.payload_bytes,
        duration_s=options.duration_s,
        wall_s=wall,
        offered_cases_per_s=options.rate,
        cases_scheduled=expected_cases,
        interrupted=counters["interrupted"] > 0,
        cases_started=counters["cases_started"],
        cases_completed=counters["cases_completed"],
        cases_incomplete=counters["cases_incomplete"],
        paths=dict(accounts.paths),
        submitted=accounts.submitted,
        committed_messages=committed.total() + committed.duplicated + committed.foreign,
        events=events,
        lost=accounts.lost,
        duplicated=committed.duplicated,
        rejected=rejections,
        undelivered=accounts.undelivered,
        deliveries_duplicated=counters["deliveries_duplicated"],
        deliveries_recovered=counters["deliveries_recovered"],
        resends=counters["resends"],
        catch_ups=counters["catch_ups"],
        deadline_misses=counters["deadline_misses"] + counters["cases_incomplete"],
        protocol_deadlines_elapsed=elapsed,
        mqtt_messages=counters_of_umpire.mqtt_in
        + counters_of_umpire.mqtt_out
        + counters["mqtt_in"]
        + counters["mqtt_out"],
        latency=message_hist,
        case_latency=case_hist,
        over_time=over_time,
        progress=timeline,
        errors=errors,
        case_deadline_s=options.case_deadline_s,
        paths_known=tuple(PATHS),
        cases_not_started=counters["cases_not_started"],
        submissions_in_flight=accounts.submissions_in_flight,
        deliveries_in_flight=accounts.deliveries_in_flight,
    )
    report.saturation = saturation_summary(
        timeline,
        over_time,
        duration_s=options.duration_s,
        offered_cases_per_s=options.rate,
        messages_per_case=options.mix.messages_per_case(),
    )
    report.extra["publishes_abandoned"] = counters["publishes_abandoned"]
    report.extra["drain_s"] = options.drain_s
    # Without --log the log is a temporary file, deleted when the run ends.
    report.extra["log_kept"] = options.log is not None
    return report


__all__ = ["LoadOptions", "LogThrough", "run_load"]
