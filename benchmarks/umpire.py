"""The load umpire's CPU per committed event, stage by stage, against raw baselines.

    python benchmarks/umpire.py [--events N] [--messages-per-batch M] [--dir DIR]
    python benchmarks/umpire.py --paced 1000 --events 6000 [--paced-items 2]

Submissions are real conversations of a load run (every path of the default
mix, each case's steps in order, a step only after the previous one's
batch), sent the way generators send them: per party, ~20 submissions in one
`SubmissionBatch` (`batch_payload`). They go through the real load umpire
(`load_umpire`: the `Umpire` with the load run's `BatchIntake`),
`Sequencer` and `SqliteEventStore` (synchronous=FULL, as in load runs), one
append batch per M MQTT messages, and each stage is timed on its own:

(a) receive + decode: `umpire.intake.take` of each MQTT payload;
(b) decide: `umpire.stage_arrivals` (sequencer: parse, digest, fold, the NewEvent),
    then `take` and `committed`, as the pipeline hands a batch on;
(c) append: `store.append` (sealing, the hash chain, executemany, the
    commit's fsync, on the store's thread);
(d) commit and publish: the rest of `Umpire.append` (the committed events
    built from the proposals) and `after_commit` (grouping by topic,
    serialising, chunking), into a bus that only records topic and payload.

With --paced R, the umpire instead runs as a load run drives it (its pipeline
driver, `umpire.run()`), fed over a bus at R events/s in MQTT messages of
--paced-items submissions (2: what generators send at moderate rates) from
two gateways (as `simulator load` runs by default), and flat out; it prints
the CPU per event of each and their ratio (the issue's target: at 1,000
events/s no more than 1.5 times the ceiling's). Each arrival wakes the event
loop, as a socket read does in a real run. Its baseline, in the same run: the
machine's own charge for work woken that often. Plain Python work (stdlib JSON
round trips of the run's payloads), as much per wake-up as the umpire spends
per arrival flat out, woken as often as the arrivals come, against the same
work back to back; the umpire's ratio over that is what its code adds.

Measured 2026-12-07 (2 cores, load average 0.3): 258 us at 1,000/s against 86
flat out, 3.0; the machine's own for 165 us of work woken 518 times a second:
2.97, so the umpire's ratio over the machine's is 1.01. On this VM (cpuidle
driver haltpoll) the charge grows as the gaps between wake-ups do: for 165 us
of work, 1.0 at 4,000 wake-ups a second, 1.6 at 1,000, 1.9 at 500, 2.9 at
100. A target of 1.5 at 1,000 events/s is below this machine's floor for any
process woken per arrival.

CPU is process time (every thread: the store's thread counts); wall time
includes waiting for the fsync. Baselines, in the same run: orjson.loads of
each MQTT payload plus orjson.dumps of each item (for (a)); sqlite3
executemany of exactly the rows the store wrote, in the same batches, WAL,
synchronous=FULL (for (c)). The wall clock handed to the sequencer and the
simulated times are fixed, so the log is the same in every run: its digest
is printed, to check that a change left the log's bytes alone.

Measured here (2 shared cores, other jobs running: figures moved by 10-20 %
from run to run; each is the best stage time of three runs of --repeat 3,
the code before and after run alternately; us of CPU per committed event):

                          before   after
    (a) receive + decode     4.2     3.7   (orjson loads + dumps: 1.0)
    (b) decide              33.1    28.4
    (c) append              17.3    15.3   (sqlite3 executemany:  6.5)
    (d) commit + publish    10.6     7.4
    total                   65.2    54.8   (15,300 -> 18,200 events per CPU s)

With one MQTT message per append (~11 events) and 15,000 cases, as a
long run at a moderate rate sees (--events 60000 --messages-per-batch 1,
one pass): 110.6 -> 73.1 us in all, of which append 54.9 -> 32.5 us. There
the store had looked up every new case on its own and, on every append,
walked its whole cache of case versions to find the new ones, a cost that
grew with the number of cases in the run. Log and published bytes are the
same before and after (the digests printed).

Issue 16, measured on the same 2 shared cores (load average 4-7 throughout;
main's code and this branch's alternately, the same script; us of CPU per
committed event, best of 4 / median):

                          before         after
    stages (a)-(d)       80.6 / 88.3    68.1 / 88.1   (log digest a357a949... both)
    --paced 1000:
      flat out           70-82          64-73
      at 1,000/s        379-425        198-213
      ratio             4.6-6.1        2.7-3.2        (target <= 1.5)

At 1,000 events/s most of what is left is waking the event loop (about 80 us
of CPU per wake-up on this machine under that load: each arrival, and a few
per batch for the hops between the pipeline's stages and the store's thread).

Issue 16 target 3 (<= 40 us per committed event), measured on the same 2 shared
cores (load average 2-3.3; main at 0ffa984 and this branch alternately, 8 rounds
of --repeat 2; us of CPU per committed event, best / median):

                          before         after
    (b) decide           39.3 / 43.0    35.8 / 38.0
    total (a)-(d)        63.5 / 69.9    60.6 / 65.2   (log digest a357a949... both)

The message event's envelope is composed straight from its fields, the wall
clock written by orjson, the committed event assembled in place, and cases
with no deadline possible are not asked for one: decide -12 %, the rest
unchanged. The target is not met. What is left of decide is mostly validating
the message (pydantic), dumping it (pydantic, orjson), the protocol's fold,
and the load intake's loop, and per event a few microseconds each of
composing the envelope (string joins, a sha256) and building three models;
append is sqlite (6.5 of its 12 us) and the hop to the store's thread.
"""

import argparse
import asyncio
import hashlib
import json
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.context import ScaledClock, seeded
from simulator.eventlog import Appended, NewEvent, SqliteEventStore
from simulator.eventlog.sqlite import INSERT_SQL, SCHEMA_SQL
from simulator.load.conversation import PATHS, Conversation, Mix, load_party
from simulator.load.heap import frozen_heap
from simulator.load.umpire import UmpireCounters, batch_payload, load_umpire
from simulator.messaging.bus import Incoming
from simulator.messaging.topics import Topics
from simulator.protocol import Agreement
from simulator.umpire import UmpireSettings
from simulator.umpire.sequencer import Sequencer

BASE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PARTIES = 20
ITEMS_PER_MESSAGE = 20
# Cases started together: their steps go out in waves, as replies to the last one.
COHORT = 500


class RecordingBus:
    """A bus that keeps what is published (topic, bytes) and receives nothing."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.published.append((topic, payload))

    async def subscribe(self, *filters: str, qos: int = 1) -> None:
        return None

    async def _nothing(self) -> AsyncIterator[Incoming]:
        return
        yield

    def messages(self) -> AsyncIterator[Incoming]:
        return self._nothing()


class TimedStore:
    """The real store, with the time of its appends measured apart."""

    def __init__(self, store: SqliteEventStore) -> None:
        self.store = store
        self.cpu = 0.0
        self.wall = 0.0

    async def append(self, batch: Sequence[NewEvent]) -> list[Appended]:
        cpu, wall = time.process_time(), time.perf_counter()
        results = await self.store.append(batch)
        self.cpu += time.process_time() - cpu
        self.wall += time.perf_counter() - wall
        return results


def submissions(
    events: int,
    seed: int = 1,
    per_message: int = ITEMS_PER_MESSAGE,
    via: Callable[[str], str] = str,
) -> list[tuple[str, bytes]]:
    """(principal, MQTT payload) of about `events` submissions, in the order they would arrive.

    `via(party)` names the principal that sends a party's submissions (a gateway).
    """
    rng = seeded(seed, "bench-umpire")
    shares = Mix().shares()
    names, weights = list(shares), list(shares.values())
    parties = [load_party(f"p{i:03d}") for i in range(PARTIES)]
    pairs = [(parties[i], parties[i + 1]) for i in range(0, PARTIES, 2)]
    seq: dict[str, int] = defaultdict(int)
    out: list[tuple[str, bytes]] = []
    made = 0
    k = 0
    while made < events:
        cohort = []
        while len(cohort) < COHORT and made < events:
            a, b = pairs[k % len(pairs)]
            if (k // len(pairs)) % 2:
                a, b = b, a
            conversation = Conversation(f"g0-{k}", rng.choices(names, weights)[0], a, b)
            cohort.append(conversation)
            made += len(PATHS[conversation.path])
            k += 1
        for step in range(max(c.steps for c in cohort)):
            by_party: dict[str, list[bytes]] = defaultdict(list)
            for conversation in cohort:
                if step >= conversation.steps:
                    continue
                sender = conversation.sender(step).id
                seq[sender] += 1
                by_party[sender].append(
                    orjson.dumps(
                        {
                            "kind": "submission",
                            "party": sender,
                            "seq": seq[sender],
                            "message": conversation.message(step),
                        }
                    )
                )
            for party, items in by_party.items():
                for i in range(0, len(items), per_message):
                    principal = via(party)
                    out.append((principal, batch_payload(principal, items[i : i + per_message])))
    return out


@dataclass
class Stage:
    cpu: float = 0.0
    wall: float = 0.0

    def us(self, events: int) -> str:
        return f"{self.cpu / events * 1e6:8.1f} us CPU  {self.wall / events * 1e6:8.1f} us wall"


@dataclass
class Figures:
    events: int = 0
    rejections: int = 0
    published: int = 0
    stages: dict[str, Stage] = field(default_factory=lambda: defaultdict(Stage))
    batches: list[int] = field(default_factory=list)
    digest: str = ""


class Timer:
    def __init__(self, stage: Stage) -> None:
        self.stage = stage

    def __enter__(self) -> None:
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self.stage.cpu += time.process_time() - self.cpu
        self.stage.wall += time.perf_counter() - self.wall


def fixed_clock() -> Callable[[], datetime]:
    """A wall clock that ticks a microsecond per reading: the same log in every run."""
    ticks = iter(range(1 << 62))
    return lambda: BASE + timedelta(microseconds=next(ticks))


async def through_umpire(
    payloads: list[tuple[str, bytes]], path: Path, per_batch: int
) -> tuple[Figures, SqliteEventStore]:
    parties = [f"p{i:03d}" for i in range(PARTIES)]
    exercise = "load-bench"
    agreement = Agreement.of([load_party(p) for p in parties])
    store = SqliteEventStore(
        path, now=fixed_clock(), synchronous="FULL", signing_key=Ed25519PrivateKey.generate()
    )
    await store.open()
    timed = TimedStore(store)
    bus = RecordingBus()
    umpire = load_umpire(
        counters=UmpireCounters(),
        sequencer=Sequencer(agreement, exercise, wallclock=fixed_clock()),
        store=timed,
        bus=bus,
        topics=Topics(exercise),
        parties=parties,
        reporting=(),
        clock=ScaledClock(BASE),
        end=BASE + timedelta(days=365),
        settings=UmpireSettings(simulated=False, tick_s=0.05, max_batch=2000),
    )
    figures = Figures()
    stages = figures.stages
    for window, start in enumerate(range(0, len(payloads), per_batch)):
        at = BASE + timedelta(milliseconds=window)
        with Timer(stages["a"]):
            for party, payload in payloads[start : start + per_batch]:
                umpire.intake.take(party, payload)
        with Timer(stages["b"]):
            umpire.stage_arrivals(at)
            batch = umpire.sequencer.take()
            umpire.sequencer.committed(batch)
        appended_cpu, appended_wall = timed.cpu, timed.wall
        with Timer(stages["cd"]):
            committed = await umpire.append(batch)
            await umpire.after_commit(committed)
        stages["c"].cpu += timed.cpu - appended_cpu
        stages["c"].wall += timed.wall - appended_wall
        figures.events += len(committed)
        figures.batches.append(len(batch.events))
    stages["d"].cpu = stages["cd"].cpu - stages["c"].cpu
    stages["d"].wall = stages["cd"].wall - stages["c"].wall
    del stages["cd"]
    figures.rejections = umpire.rejections
    figures.published = len(bus.published)
    digest = hashlib.sha256()
    for topic, payload in bus.published:
        digest.update(topic.encode() + b"\n" + payload + b"\n")
    figures.digest = digest.hexdigest()[:16]
    return figures, store


async def best_of(
    passes: int, payloads: list[tuple[str, bytes]], folder: Path, per_batch: int
) -> tuple[Figures, Path]:
    """The figures of the first pass, with each stage's best time over all passes, and a log.

    The machine is shared: the best of a few passes is the least disturbed.
    """
    best: Figures | None = None
    for i in range(passes):
        path = folder / f"umpire-{i}.db"
        # The garbage collector tuned as a load run tunes it (`frozen_heap`).
        async with frozen_heap():
            figures, store = await through_umpire(payloads, path, per_batch)
        await store.close()
        if best is None:
            best = figures
            continue
        assert (figures.digest, figures.events) == (best.digest, best.events), f"pass {i} differs"
        for name, stage in figures.stages.items():
            if stage.cpu < best.stages[name].cpu:
                best.stages[name] = stage
    assert best is not None
    return best, path


@dataclass(frozen=True)
class Arrival:
    topic: str
    payload: bytes


class FeedingBus(RecordingBus):
    """A bus that delivers MQTT messages to the umpire at a steady rate (None: at once)."""

    def __init__(self, arrivals: list[Arrival], per_second: float | None) -> None:
        super().__init__()
        self.arrivals = arrivals
        self.per_second = per_second

    async def _feed(self) -> AsyncIterator[Incoming]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, arrival in enumerate(self.arrivals):
            if self.per_second is not None:
                delay = start + i / self.per_second - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif i % 100 == 0:
                await asyncio.sleep(0)  # flat out, but the umpire's stages get their turn
            yield arrival
        await asyncio.Event().wait()  # the umpire stops the iteration

    def messages(self) -> AsyncIterator[Incoming]:
        return self._feed()


GATEWAYS = ("gw-0", "gw-1")


def _gateway_of(party: str) -> str:
    return GATEWAYS[int(party[1:]) * len(GATEWAYS) // PARTIES]


async def paced(
    payloads: list[tuple[str, bytes]], path: Path, events_per_second: float | None
) -> tuple[float, float, int]:
    """The load umpire as a load run drives it (its pipeline), fed at a steady rate.

    Returns (CPU seconds, wall seconds, events committed) from the first arrival
    to the last event committed and published.
    """
    parties = [f"p{i:03d}" for i in range(PARTIES)]
    topics = Topics("load-bench")
    # As `simulator load` runs by default: two generator processes, a gateway each.
    gateways = {gateway: [p for p in parties if _gateway_of(p) == gateway] for gateway in GATEWAYS}
    items = sum(payload.count(b'"kind":"submission"') for _, payload in payloads)
    per_second = None if events_per_second is None else events_per_second * len(payloads) / items
    bus = FeedingBus([Arrival(topics.submit(p), payload) for p, payload in payloads], per_second)
    store = SqliteEventStore(
        path, now=fixed_clock(), synchronous="FULL", signing_key=Ed25519PrivateKey.generate()
    )
    await store.open()
    umpire = load_umpire(
        counters=UmpireCounters(),
        sequencer=Sequencer(
            Agreement.of([load_party(p) for p in parties]), topics.exercise, wallclock=fixed_clock()
        ),
        store=store,
        bus=bus,
        topics=topics,
        parties=parties,
        reporting=(),
        clock=ScaledClock(BASE),
        end=BASE + timedelta(days=365),
        settings=UmpireSettings(simulated=False, tick_s=0.05, max_batch=2000),
        gateways=gateways,
    )
    published = asyncio.Event()
    umpire.on_commit = lambda events: events[-1].position >= items and published.set()
    cpu, wall = time.process_time(), time.perf_counter()
    async with frozen_heap():
        run = asyncio.create_task(umpire.run())
        await published.wait()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        umpire.stop("benchmark done")
        await run
    await store.close()
    return cpu, wall, umpire.head


def raw_decode(payloads: list[tuple[str, bytes]]) -> Stage:
    stage = Stage()
    with Timer(stage):
        for _, payload in payloads:
            for item in orjson.loads(payload)["items"]:
                orjson.dumps(item)
    return stage


def raw_append(path: Path, source: Path, batches: list[int]) -> Stage:
    """executemany of the rows the store wrote, in the same batches, WAL, FULL."""
    with sqlite3.connect(source) as db:
        rows = db.execute(
            "SELECT position, id, subject, caseversion, type, hash, body FROM events"
            " ORDER BY position"
        ).fetchall()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    for statement in SCHEMA_SQL:
        conn.execute(statement)
    stage = Stage()
    start = 0
    with Timer(stage):
        for size in batches:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT_SQL, rows[start : start + size])
            conn.execute("COMMIT")
            start += size
    conn.close()
    return stage


def log_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with sqlite3.connect(path) as db:
        for (body,) in db.execute("SELECT CAST(body AS BLOB) FROM events ORDER BY position"):
            digest.update(body + b"\n")
    return digest.hexdigest()[:16]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument(
        "--messages-per-batch",
        type=int,
        default=10,
        help="MQTT messages received between two appends (one append batch)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where the logs go (a disk)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="passes; each figure is the best of them"
    )
    parser.add_argument(
        "--paced",
        type=float,
        default=0,
        help="also run the umpire's pipeline fed at this many events/s and flat out, in MQTT"
        " messages of --paced-items submissions, and compare its CPU per event (0: not)",
    )
    parser.add_argument("--paced-items", type=int, default=2)
    args = parser.parse_args()
    if args.paced:
        await compare_paced(args)
        return

    started = time.perf_counter()
    payloads = submissions(args.events)
    items = sum(payload.count(b'"kind":"submission"') for _, payload in payloads)
    size = sum(len(p) for _, p in payloads) // len(payloads)
    print(
        f"{items} submissions in {len(payloads)} MQTT messages (~{size} bytes each),"
        f" made in {time.perf_counter() - started:.1f} s"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        folder = Path(directory)
        figures, log = await best_of(args.repeat, payloads, folder, args.messages_per_batch)
        n = figures.events
        batches = figures.batches
        print(
            f"committed {n} events in {len(batches)} appends (~{n // len(batches)} per append),"
            f" {figures.rejections} rejections, {figures.published} MQTT messages published"
        )
        print(f"log digest {log_digest(log)}, published digest {figures.digest}")
        decode = min((raw_decode(payloads) for _ in range(args.repeat)), key=lambda s: s.cpu)
        append = min(
            (raw_append(folder / f"raw-{i}.db", log, batches) for i in range(args.repeat)),
            key=lambda s: s.cpu,
        )
        stages = figures.stages
        print("per committed event:")
        print(f"(a) receive + decode:      {stages['a'].us(n)}")
        print(f"    orjson loads + dumps:  {decode.us(n)}")
        print(f"    ratio (a) / baseline:  {stages['a'].cpu / decode.cpu:8.1f}")
        print(f"(b) decide:                {stages['b'].us(n)}")
        print(f"(c) append (store):        {stages['c'].us(n)}")
        print(f"    sqlite3 executemany:   {append.us(n)}")
        print(f"    ratio (c) / baseline:  {stages['c'].cpu / append.cpu:8.1f}")
        print(f"(d) commit + publish:      {stages['d'].us(n)}")
        total = Stage(sum(s.cpu for s in stages.values()), sum(s.wall for s in stages.values()))
        print(f"total (a)-(d):             {total.us(n)}")
        print(f"    that is {n / total.cpu:,.0f} committed events per CPU second")


async def compare_paced(args: argparse.Namespace) -> None:
    """CPU per event of the pipeline at a moderate rate against flat out (its ceiling)."""
    payloads = submissions(args.events, per_message=args.paced_items, via=_gateway_of)
    print(f"{args.events} submissions in {len(payloads)} MQTT messages")
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        figures: dict[str, list[float]] = defaultdict(list)
        for i in range(args.repeat):
            for label, rate in (("flat out", None), (f"at {args.paced:,.0f}/s", args.paced)):
                cpu, wall, events = await paced(
                    payloads, Path(directory) / f"paced-{i}-{rate}.db", rate
                )
                figures[label].append(cpu / events * 1e6)
                print(
                    f"{label:>12}: {events} events in {wall:.1f} s ({events / wall:,.0f}/s),"
                    f" {cpu / events * 1e6:.1f} us CPU per event"
                )
        best = {label: min(values) for label, values in figures.items()}
        low, high = best[f"at {args.paced:,.0f}/s"], best["flat out"]
        print(f"best: {low:.1f} us at {args.paced:,.0f}/s, {high:.1f} us flat out")
        print(f"ratio (moderate / ceiling): {low / high:.2f}  (target <= 1.5)")
        arrivals = args.paced * len(payloads) / args.events
        # Each wake-up's work as large as the umpire's per arrival at its ceiling.
        unit_us = high * args.events / len(payloads)
        machine = min(
            [await machine_penalty(payloads, arrivals, unit_us) for _ in range(args.repeat)]
        )
        print(
            f"the machine's own: Python work of {unit_us:.0f} us woken {arrivals:,.0f} times a"
            f" second costs {machine:.2f}x its CPU back to back; the umpire's ratio over the"
            f" machine's: {low / high / machine:.2f}"
        )


async def machine_penalty(
    payloads: list[tuple[str, bytes]], per_second: float, unit_us: float
) -> float:
    """CPU of the same Python work woken `per_second` times a second, against back to back.

    What a machine charges for work that arrives in small bursts (caches gone
    cold, a virtual CPU woken from idle, the event loop's own wake-up), apart
    from anything the umpire does: each wake-up does stdlib JSON round trips of
    one MQTT payload of the run, as many as take about `unit_us`.
    """
    docs = [orjson.loads(payload) for _, payload in payloads[:2000]]
    cpu = time.process_time()
    for doc in docs:
        json.loads(json.dumps(doc))
    rounds = max(1, round(unit_us / ((time.process_time() - cpu) / len(docs) * 1e6)))

    def unit(doc: object) -> None:
        for _ in range(rounds):
            json.loads(json.dumps(doc))

    cpu = time.process_time()
    for doc in docs:
        unit(doc)
    flat = time.process_time() - cpu
    loop = asyncio.get_running_loop()
    start, cpu = loop.time(), time.process_time()
    for i, doc in enumerate(docs):
        delay = start + i / per_second - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        unit(doc)
    return (time.process_time() - cpu) / flat


if __name__ == "__main__":
    asyncio.run(main())
