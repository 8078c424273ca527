"""A load generator: many party pairs holding whole conversations, open loop, in one process.

Cases start on a fixed schedule whatever the system does (open loop), and
every latency counts from when a message was due, not from when it could be
sent, so a stalled system shows up as latency rather than as fewer samples
(no coordinated omission). The opening message of a case is due at the
case's scheduled start; each later one when the party whose turn it is saw
the previous message committed.

Each party has its own connection and credentials, or (the default) the
process has one gateway connection for all its parties, whose batches mix
them and whose inbox brings each committed event once for all of them
(`simulator.load.umpire`). Each party keeps its submissions in the
parties' own `Outbox` (`simulator.party.outbox`: the one a simulated agency
and a trainee's seat keep) until it sees them committed or rejected, and
resends on its evidence of loss; submissions go on the wire through the
party `FastCodec`. A party that has not seen a commit it waits for asks the
umpire to catch up. Deliveries are counted per party: a commit seen twice
is a duplicate delivery (harmless, dropped here), one never seen by its
recipient is a lost delivery.
"""

import asyncio
import contextlib
import random
import resource
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from simulator.context import fresh_rng, monotonic, seeded
from simulator.load.conversation import PATHS, Conversation, load_party
from simulator.load.heap import frozen_heap
from simulator.load.ledger import CLOSED, COMPLETED, CaseLedger, case_id, parse_message_id
from simulator.load.umpire import batch_payload
from simulator.messaging.topics import Topics
from simulator.party.codec import FastCodec
from simulator.party.outbox import Outbox, Outgoing, ResendPolicy
from simulator.protocol import Party
from simulator.protocol.ids import partition_of
from simulator.records import MESSAGE_PREFIX, REJECTION, audience_json
from simulator.transport import (
    BrokerAddress,
    Credentials,
    Node,
    SessionSettings,
    Transport,
    client_id_for,
)

log = structlog.get_logger("simulator.load")

# Microseconds, 1 us .. 1 h, 2 significant digits (1 %): hdrh walks its buckets in
# Python, and 3 digits made each percentile cost ~80 ms on a busy machine.
HIST_MAX_US = 3_600_000_000
HIST_DIGITS = 2


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIST_MAX_US, HIST_DIGITS)


# QoS 1 publishes awaiting their PUBACK per connection (paho's default is 20).
MAX_INFLIGHT = 1000
# Stay well under the umpire's 256 KiB payload limit with a batch.
MAX_BATCH_BYTES = 128 * 1024
# The longest a submission waits for its commit before it is sent again.
RESEND_MAX_S = 30.0
# After the drain, how long publishes under way may still take before they are given up.
PUBLISH_GRACE_S = 2.0
# How late the schedule may still start a case due before its end (one event loop turn).
OFFER_GRACE_S = 1.0
# Cases the schedule starts in one event loop turn at most (each drafts its request).
CASES_PER_TURN = 500
# Publishes still waiting in this process past which a resend scan is skipped.
RESEND_BACKLOG = 50


def _cpu_ms() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return int((usage.ru_utime + usage.ru_stime) * 1000)


def _padding(payload_bytes: int) -> str:
    """Free text that brings an opening request's submission to about `payload_bytes`."""
    if payload_bytes <= 0:
        return ""
    a, b = load_party("p000"), load_party("p001")
    sample = Conversation("g0-0", "accepted", a, b)
    plain = orjson.dumps(
        {"kind": "submission", "party": "p000", "seq": 1, "message": sample.message(0)}
    )
    # "other_information":"..." adds its key and quotes too.
    return "x" * max(payload_bytes - len(plain) - len(',"other_information":""'), 1)


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything one generator process needs (picklable)."""

    index: int
    host: str
    port: int
    exercise: str
    run_id: str
    pairs: tuple[tuple[str, str], ...]
    credentials: dict[str, tuple[str, str]]
    rate: float
    duration_s: float
    start_at: float
    mix: dict[str, float]
    qos: int = 1
    one_per_message: bool = False
    payload_bytes: int = 0
    seed: int = 1
    drain_s: float = 30.0
    resend_after_s: float = 2.0
    flush_s: float = 0.002
    case_deadline_s: float = 1.0
    connect_timeout_s: float = 30.0
    protocol: str = "3.1.1"
    # The principal this process speaks through for all its parties (one connection,
    # batches mixing them), or None: a connection per party.
    gateway: str | None = None
    # --secure: the broker speaks TLS only; its CA certificate, as a path.
    tls: bool = False
    ca_file: str | None = None
    # The other nodes of a clustered broker, (host, port) after the first: the
    # generators fail over between them as every other client does.
    other_nodes: tuple[tuple[str, int], ...] = ()
    # How many umpires the cases are split among (`simulator.load.partitioned`), as
    # `Topics.partitions` says it: 0, one umpire on the bare topics; n >= 1, each
    # submission on its case's partition topic (even n = 1, a partition with a standby),
    # and positions each partition's own.
    partitions: int = 0


@dataclass(slots=True)
class Delivery:
    """One submission's way to both its parties: the sender's commit and the recipient's copy.

    Its `item` sits in the sender's outbox until the sender sees it committed;
    the delivery is kept until the recipient has seen it too.
    """

    conversation: Conversation
    step: int
    item: Outgoing
    due: float
    sender_seen: bool = False
    seen_at: float = 0.0
    recipient_seen: bool = False
    # The highest position each party had seen when it was sent: where to catch up from.
    sender_floor: int = 0
    recipient_floor: int = 0
    # The partition of its case: whose umpire decides it, whose positions the floors are.
    partition: int = 0


@dataclass
class GeneratorResult:
    index: int
    cases: CaseLedger
    message_hist: bytes
    case_hist: bytes
    per_second: list[tuple[int, bytes]]
    counters: dict[str, int]
    errors: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


class Generator:
    def __init__(self, spec: GeneratorSpec) -> None:
        self.spec = spec
        self.topics = Topics(spec.exercise)
        self.parties: dict[str, Party] = {}
        for a, b in spec.pairs:
            self.parties[a] = load_party(a)
            self.parties[b] = load_party(b)
        self.transports: dict[str, Transport] = {}
        self.rng: random.Random = seeded(spec.seed, "load", str(spec.index))
        names = list(spec.mix)
        weights = [spec.mix[n] for n in names]
        self._choose: Callable[[], str] = lambda: self.rng.choices(names, weights)[0]
        self.padding = _padding(spec.payload_bytes)
        self.seq: dict[str, int] = defaultdict(int)
        self.codec = FastCodec()
        policy = ResendPolicy(spec.resend_after_s, RESEND_MAX_S)
        self.outboxes = {party: Outbox(policy) for party in self.parties}
        self.deliveries: dict[str, Delivery] = {}  # message id -> its way to both parties
        self.pending: dict[str, list[Delivery]] = defaultdict(list)
        # (party, partition) -> the highest position of that partition's log it has seen.
        self.max_pos: dict[tuple[str, int], int] = defaultdict(int)
        # Every case's fate in a few bytes (reconciled by the parent); objects only
        # for the cases still open, so memory follows what is in flight, not the run.
        self.cases = CaseLedger(round(spec.rate * spec.duration_s))
        self.open: dict[str, Conversation] = {}
        self.message_hist = new_histogram()
        self.case_hist = new_histogram()
        # Latency of the current second; the seconds before it, encoded (a few hundred
        # bytes each rather than a live histogram's tens of kilobytes).
        self.second = -1
        self.second_hist = new_histogram()
        self.per_second: list[tuple[int, bytes]] = []
        self.counters: dict[str, int] = defaultdict(int)
        self.catch_up_asked: dict[tuple[str, int], float] = {}
        self.publishing: set[asyncio.Task[None]] = set()
        self.in_flight = asyncio.Semaphore(2000)
        self.errors: list[str] = []
        self.rejected: list[str] = []
        self._wake = asyncio.Event()
        self._all_done = asyncio.Event()
        # The run was interrupted (`simulator.load.interrupt`): stop offering; then stop
        # draining too.
        self._stop_offering = asyncio.Event()
        self._stop_draining = asyncio.Event()
        self._snapshots = 0
        self._p99_ms = 0.0

    @property
    def principals(self) -> tuple[str, ...]:
        """Who this process connects as: its gateway, or each of its parties."""
        return (self.spec.gateway,) if self.spec.gateway else tuple(self.parties)

    def _via(self, party: str) -> str:
        """The principal whose connection carries `party`'s submissions."""
        return self.spec.gateway or party

    # -- lifecycle -------------------------------------------------------------------

    async def run(
        self, progress: Callable[[dict[str, Any]], None] | None = None
    ) -> GeneratorResult:
        spec = self.spec
        address = BrokerAddress(
            spec.host,
            spec.port,
            tls=spec.tls,
            ca_file=Path(spec.ca_file) if spec.ca_file is not None else None,
            others=tuple(Node(host, port) for host, port in spec.other_nodes),
        )
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(frozen_heap())
            for party in self.principals:
                user, password = spec.credentials[party]
                transport = Transport(
                    address,
                    SessionSettings(
                        client_id_for(spec.exercise, party, spec.run_id),
                        protocol="5" if spec.protocol == "5" else "3.1.1",
                    ),
                    rng=fresh_rng(),
                    credentials=Credentials(user, password),
                    connect_timeout=spec.connect_timeout_s,
                    publish_timeout=120.0,
                    max_buffered=10_000,
                    max_inflight=MAX_INFLIGHT,
                )
                await stack.enter_async_context(transport)
                filters = (
                    (self.topics.inbox(party),)
                    if party == spec.gateway
                    else self.topics.party_filters(party)
                )
                await transport.subscribe(*filters, qos=spec.qos)
                self.transports[party] = transport
            async with asyncio.TaskGroup() as group:
                readers = [
                    group.create_task(self._read(party, t), name=f"load[{party}].read")
                    for party, t in self.transports.items()
                ]
                flusher = group.create_task(self._flush_loop(), name="load.flush")
                resender = group.create_task(self._resend_loop(), name="load.resend")
                reporter = group.create_task(self._progress_loop(progress), name="load.progress")
                cpu_at_start = _cpu_ms()
                await self._schedule()
                await self._drain()
                # From the schedule's start: imports and connecting are not load.
                self.counters["cpu_ms"] = _cpu_ms() - cpu_at_start
                for task in (*readers, flusher, resender, reporter):
                    task.cancel()
                await self._abandon_publishing()
        return self.result()

    def interrupt(self) -> None:
        """The run is being stopped: no new cases at the first word, no more drain at the next."""
        if self._stop_offering.is_set():
            self._stop_draining.set()
            return
        self._stop_offering.set()
        self.counters["interrupted"] = 1

    async def _abandon_publishing(self) -> None:
        """Let publishes under way finish briefly, then give up the rest.

        Past capacity thousands wait for the broker or for the in-flight window;
        what they carry belongs to cases left open, counted as unfinished.
        """
        if self.publishing:
            await asyncio.wait(self.publishing, timeout=PUBLISH_GRACE_S)
        left = list(self.publishing)
        self.counters["publishes_abandoned"] = len(left)
        for task in left:
            task.cancel()
        if left:
            # A publish awaiting its PUBACK may take its time to unwind; the transports
            # close next and end whatever is left.
            await asyncio.wait(left, timeout=PUBLISH_GRACE_S)

    def result(self) -> GeneratorResult:
        if self.second >= 0:
            self.per_second.append((self.second, self.second_hist.encode()))
            self.second = -1
        return GeneratorResult(
            index=self.spec.index,
            cases=self.cases,
            message_hist=self.message_hist.encode(),
            case_hist=self.case_hist.encode(),
            per_second=self.per_second,
            counters=dict(self.counters),
            errors=self.errors,
            rejected=self.rejected,
        )

    # -- the schedule ----------------------------------------------------------------

    async def _schedule(self) -> None:
        spec = self.spec
        total = self.cases.scheduled
        self.counters["cases_scheduled"] = total
        interval = 1.0 / spec.rate if spec.rate > 0 else 0.0
        pairs = spec.pairs
        # Offering stops at the schedule's end (and a moment's grace, for a busy event
        # loop's last turn), started or not: a process too busy to start its cases on
        # time is saturated, and what it never offered is counted.
        # From when this process was ready, if that was after the agreed start (slow to
        # connect on a busy machine): its cases due meanwhile start at once, as before.
        offer_until = max(spec.start_at, monotonic()) + spec.duration_s + OFFER_GRACE_S
        k = 0
        while k < total:
            now = monotonic()
            if now >= offer_until or self._stop_offering.is_set():
                break
            due = spec.start_at + k * interval
            if due > now:
                await asyncio.sleep(min(due - now, 0.01))
                continue
            # Every case that is due now starts now, however late we are (open loop), a
            # turn at a time: a late loop with thousands due still hears the clock.
            turn_ends = k + CASES_PER_TURN
            while k < min(total, turn_ends) and spec.start_at + k * interval <= now:
                a, b = pairs[k % len(pairs)]
                # Alternate roles within a pair, so every party both asks and answers.
                if (k // len(pairs)) % 2:
                    a, b = b, a
                scheduled = spec.start_at + k * interval
                conversation = Conversation(
                    case_id(spec.index, k),
                    self._choose(),
                    self.parties[a],
                    self.parties[b],
                    padding=self.padding,
                    number=k,
                    started=scheduled,
                )
                self.cases.start(k, conversation.path)
                self.open[conversation.case_id] = conversation
                self.counters["cases_started"] += 1
                self._queue(conversation, 0, scheduled)
                k += 1
            self._wake.set()
            if k == turn_ends:
                await asyncio.sleep(0)

    async def _drain(self) -> None:
        if self.open and not self._stop_draining.is_set():
            self._all_done.clear()
            waits = [
                asyncio.create_task(self._all_done.wait()),
                asyncio.create_task(self._stop_draining.wait()),
            ]
            await asyncio.wait(waits, timeout=self.spec.drain_s, return_when="FIRST_COMPLETED")
            for task in waits:
                task.cancel()
        self.counters["cases_not_started"] = self.cases.scheduled - self.cases.started
        self.counters["cases_incomplete"] = len(self.open)

    def _close_case(self, case_id: str) -> None:
        self.open.pop(case_id, None)
        if not self.open:
            self._all_done.set()

    # -- sending ---------------------------------------------------------------------

    def _queue(self, conversation: Conversation, step: int, due: float) -> None:
        sender = conversation.sender(step).id
        self.seq[sender] += 1
        seq = self.seq[sender]
        message = conversation.message(step)
        mid = conversation.message_id(step)
        payload = self.codec.submission(sender, seq, message)
        partitions = self.spec.partitions
        partition = partition_of(conversation.case_id, partitions) if partitions else 0
        # Each partition's umpire takes a party's submissions in order: its own lane.
        item = Outgoing(seq, mid, message["type"], conversation.case_id, payload, lane=partition)
        self.outboxes[sender].add(item)
        delivery = Delivery(conversation, step, item, due, partition=partition)
        self.deliveries[mid] = delivery
        self.cases.submitted[conversation.number] = step + 1
        self.pending[sender].append(delivery)

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._flush()
            # Batching window: what becomes due meanwhile goes out in the same messages.
            await asyncio.sleep(self.spec.flush_s)

    def _flush(self) -> None:
        pending, self.pending = self.pending, defaultdict(list)
        now = monotonic()
        floor = self.max_pos
        by_route: dict[tuple[str, int], list[Outgoing]] = defaultdict(list)
        for party, deliveries in pending.items():
            via = self._via(party)
            epoch = self._epoch(via)
            for delivery in deliveries:
                Outbox.sent(delivery.item, now, epoch)
                partition = delivery.partition
                recipient = delivery.conversation.recipient(delivery.step).id
                delivery.sender_floor = floor[party, partition]
                delivery.recipient_floor = floor[recipient, partition]
                by_route[via, partition].append(delivery.item)
        for (principal, partition), items in by_route.items():
            self._publish_all(principal, items, partition)

    def _epoch(self, principal: str) -> int:
        """How many connections `principal`'s transport has made: what a submission went on."""
        return self.transports[principal].connected.connections

    def _publish_all(self, principal: str, items: list[Outgoing], partition: int) -> None:
        """Submissions of `principal`'s parties, in batches (or one a publish, if so asked)."""
        if self.spec.one_per_message:
            for item in items:
                self._publish(principal, item.payload, partition, [item])
            return
        chunk: list[Outgoing] = []
        size = 0
        for item in items:
            if chunk and size + len(item.payload) > MAX_BATCH_BYTES:
                self._publish(principal, self._batch(principal, chunk), partition, chunk)
                chunk, size = [], 0
            chunk.append(item)
            size += len(item.payload) + 1
        if chunk:
            self._publish(principal, self._batch(principal, chunk), partition, chunk)

    @staticmethod
    def _batch(principal: str, items: list[Outgoing]) -> bytes:
        return batch_payload(principal, [item.payload for item in items])

    def _publish(
        self, principal: str, payload: bytes, partition: int, items: list[Outgoing]
    ) -> None:
        self.counters["mqtt_out"] += 1
        topic = self.topics.submit(principal, self._topic_partition(partition))
        task = asyncio.get_running_loop().create_task(self._send(principal, topic, payload, items))
        self.publishing.add(task)
        task.add_done_callback(self.publishing.discard)

    def _topic_partition(self, partition: int) -> int | None:
        """The partition a topic names: none where one umpire decides everything."""
        return partition if self.spec.partitions else None

    async def _send(
        self, principal: str, topic: str, payload: bytes, items: list[Outgoing]
    ) -> None:
        async with self.in_flight:
            try:
                await self.transports[principal].publish(topic, payload, qos=self.spec.qos)
            except Exception as exc:  # the outbox resends (evidence of loss); say so once
                for item in items:
                    Outbox.suspect(item)
                self.counters["publish_failures"] += 1
                if len(self.errors) < 20:
                    self.errors.append(f"publish by {principal}: {exc}")

    # -- receiving -------------------------------------------------------------------

    async def _read(self, party: str, transport: Transport) -> None:
        async for incoming in transport.messages():
            self.counters["mqtt_in"] += 1
            try:
                message = orjson.loads(incoming.payload)
            except orjson.JSONDecodeError:
                self.counters["undecodable"] += 1
                continue
            kind = message.get("kind")
            if kind in {"events", "catch_up"}:
                caught_up = kind == "catch_up"
                now = monotonic()
                # Positions are numbered in each partition's log.
                partition = message.get("partition") or 0
                if party != self.spec.gateway:
                    for event in message["events"]:
                        self._observe(party, event, now, caught_up, partition)
                    continue
                # A gateway's inbox carries what any of its parties may see: each of
                # them sees it here (the umpire sent it once for all of them).
                for event in message["events"]:
                    for seer in self._seers(event):
                        self._observe(seer, event, now, caught_up, partition)

    def _seers(self, event: dict[str, Any]) -> list[str]:
        """Our parties in an event's audience (the one rule, `records.audience_json`)."""
        who = audience_json(event)
        if who is None:
            return list(self.parties)
        return [p for p in sorted(who) if p in self.parties]

    def _observe(
        self, party: str, event: dict[str, Any], now: float, caught_up: bool, partition: int
    ) -> None:
        position = event["position"]
        key = (party, partition)
        self.max_pos[key] = max(self.max_pos[key], position)
        kind = event["type"]
        if kind == REJECTION:
            data = event["data"]
            outbox = self.outboxes.get(data.get("party"))
            seq = data.get("seq")
            # Settled once: a rejection seen again (caught up) finds nothing to settle.
            item = (
                outbox.rejected(seq, event["id"], now)
                if outbox is not None and type(seq) is int
                else None
            )
            if item is not None:
                self.counters["rejections_seen"] += 1
                self.rejected.append(item.message_id)
                delivery = self.deliveries.pop(item.message_id, None)
                if delivery is not None:
                    conversation = delivery.conversation
                    if conversation.case_id in self.open:
                        self.cases.state[conversation.number] = CLOSED
                    self._close_case(conversation.case_id)
            return
        if not kind.startswith(MESSAGE_PREFIX):
            return
        mid = event["id"]
        delivery = self.deliveries.get(mid)
        if delivery is None:
            # Seen by both its parties already (or settled by a rejection): a repeat.
            if not caught_up and self._ours(mid):
                self.counters["deliveries_duplicated"] += 1
            return
        step = delivery.step
        conversation = delivery.conversation
        if party == conversation.sender(step).id:
            repeat = delivery.sender_seen
        elif party == conversation.recipient(step).id:
            repeat = delivery.recipient_seen
        else:
            return
        if repeat:
            if not caught_up:
                self.counters["deliveries_duplicated"] += 1
            return
        self._advance(party, mid, delivery, now, caught_up)

    def _ours(self, mid: str) -> bool:
        """Whether `mid` is a message this generator submitted."""
        found = parse_message_id(mid)
        if found is None or found[0] != self.spec.index:
            return False
        number, step = found[1], found[2]
        return 0 <= number < self.cases.started and step < self.cases.submitted[number]

    def _advance(
        self, party: str, mid: str, delivery: Delivery, now: float, caught_up: bool
    ) -> None:
        """`party` saw message `mid` committed: record it, and take the conversation on."""
        conversation = delivery.conversation
        step = delivery.step
        if caught_up:
            self.counters["deliveries_recovered"] += 1
        if party == conversation.recipient(step).id and not delivery.recipient_seen:
            delivery.recipient_seen = True
            self.cases.recipient_seen[conversation.number] |= 1 << step
            self._record(now - delivery.due, now)
        if party == conversation.sender(step).id:
            delivery.sender_seen = True
            delivery.seen_at = now
            self.outboxes[party].committed(mid, now)
        nxt = step + 1
        if nxt < conversation.steps:
            if party == conversation.sender(nxt).id and conversation.step < nxt:
                conversation.step = nxt
                self._queue(conversation, nxt, now)
                self._wake.set()
        elif party == conversation.requesting.id and conversation.case_id in self.open:
            self._close_case(conversation.case_id)
            self.cases.state[conversation.number] = COMPLETED
            self.counters["cases_completed"] += 1
            took = now - conversation.started
            self.case_hist.record_value(max(int(took * 1e6), 1))
            if took > self.spec.case_deadline_s:
                self.counters["deadline_misses"] += 1
        if delivery.sender_seen and delivery.recipient_seen:
            del self.deliveries[mid]

    def _record(self, seconds: float, now: float) -> None:
        us = max(int(seconds * 1e6), 1)
        self.message_hist.record_value(us)
        self.counters["messages_delivered"] += 1
        second = max(int(now - self.spec.start_at), 0)
        if second != self.second:
            if self.second >= 0:
                self.per_second.append((self.second, self.second_hist.encode()))
                self.second_hist.reset()
            self.second = second
        self.second_hist.record_value(us)

    # -- recovery --------------------------------------------------------------------

    async def _resend_loop(self) -> None:
        """Resend what was lost on the way in; catch up whoever missed a commit.

        Each party's outbox says what it finds lost (`Outbox.due`: evidence,
        not lateness, since resending to a busy umpire only adds to its work:
        overtaken in its partition, a connection made since it was sent, a failed
        publish, or a silence probe).
        From the second try a sender also asks to catch up, in case the commit
        was made and only its delivery lost. A recipient that has not seen a
        commit its sender saw a resend interval ago missed that delivery and
        asks to catch up. Each party asks at most once per interval, from the
        lowest position it may have missed.
        """
        spec = self.spec
        while True:
            # A scan walks the whole outbox, which is large under load: twice a second.
            await asyncio.sleep(min(spec.resend_after_s / 4, 0.5))
            if len(self.publishing) > RESEND_BACKLOG:
                # What this process sent has not all left it yet: no evidence of loss,
                # and resending would queue more behind it (past capacity, a storm
                # of publishes that grew each generator past a gigabyte).
                self.counters["resend_scans_skipped"] += 1
                continue
            now = monotonic()
            # (party, partition) -> the lowest position it may have missed there.
            behind: dict[tuple[str, int], int] = {}
            resent: dict[tuple[str, int], list[Outgoing]] = defaultdict(list)
            for sender, outbox in self.outboxes.items():
                if not outbox.items:
                    continue
                via = self._via(sender)
                epoch = self._epoch(via)
                for item in outbox.due(now, epoch):
                    self.counters["resends"] += 1
                    outbox.sent(item, now, epoch)
                    delivery = self.deliveries[item.message_id]
                    resent[via, delivery.partition].append(item)
                    if item.attempts >= 3:
                        key = (sender, delivery.partition)
                        floor = delivery.sender_floor
                        behind[key] = min(behind.get(key, floor), floor)
            # Batched as first sends are: one publish per item was one task per item.
            for (principal, partition), items in resent.items():
                self._publish_all(principal, items, partition)
            for delivery in self.deliveries.values():
                if (
                    delivery.sender_seen
                    and not delivery.recipient_seen
                    and now - delivery.seen_at >= spec.resend_after_s
                ):
                    key = (delivery.conversation.recipient(delivery.step).id, delivery.partition)
                    delivery.seen_at = now
                    floor = delivery.recipient_floor
                    behind[key] = min(behind.get(key, floor), floor)
            if spec.gateway is not None and behind:
                # The gateway asks for all its parties at once, from the lowest floor of
                # each partition.
                lowest: dict[tuple[str, int], int] = {}
                for (_, partition), floor in behind.items():
                    key = (spec.gateway, partition)
                    lowest[key] = min(lowest.get(key, floor), floor)
                behind = lowest
            for (party, partition), after in behind.items():
                asked = self.catch_up_asked.get((party, partition))
                if asked is not None and now - asked < spec.resend_after_s:
                    continue
                self.catch_up_asked[party, partition] = now
                self.counters["catch_ups"] += 1
                payload = self.codec.catch_up_request(party, after)
                topic = self.topics.report(party, self._topic_partition(partition))
                task = asyncio.get_running_loop().create_task(self._report(party, topic, payload))
                self.publishing.add(task)
                task.add_done_callback(self.publishing.discard)

    async def _report(self, party: str, topic: str, payload: bytes) -> None:
        with contextlib.suppress(Exception):
            await self.transports[party].publish(topic, payload, qos=1)

    # -- progress --------------------------------------------------------------------

    async def _progress_loop(self, progress: Callable[[dict[str, Any]], None] | None) -> None:
        if progress is None:
            return
        while True:
            await asyncio.sleep(1.0)
            progress(self.snapshot())

    def snapshot(self) -> dict[str, Any]:
        # A percentile walks the histogram in Python: every few seconds is enough here.
        self._snapshots += 1
        if self._snapshots % 5 == 1:
            self._p99_ms = self.message_hist.get_value_at_percentile(99) / 1000
        return {
            "index": self.spec.index,
            "cases_started": self.counters["cases_started"],
            "cases_completed": self.counters["cases_completed"],
            "messages_delivered": self.counters["messages_delivered"],
            "open": len(self.open),
            "p99_ms": self._p99_ms,
            "mqtt_out": self.counters["mqtt_out"],
            "mqtt_in": self.counters["mqtt_in"],
            "resends": self.counters["resends"],
        }


def spec_from_json(data: dict[str, Any]) -> GeneratorSpec:
    data = dict(data)
    data["pairs"] = tuple(tuple(p) for p in data["pairs"])
    data["credentials"] = {k: tuple(v) for k, v in data["credentials"].items()}
    return GeneratorSpec(**data)


def result_to_json(result: GeneratorResult) -> dict[str, Any]:
    return {
        "index": result.index,
        "cases": result.cases.to_json(),
        "message_hist": result.message_hist.decode(),
        "case_hist": result.case_hist.decode(),
        "per_second": [(s, h.decode()) for s, h in result.per_second],
        "counters": result.counters,
        "errors": result.errors,
        "rejected": result.rejected,
    }


def result_from_json(data: dict[str, Any]) -> GeneratorResult:
    return GeneratorResult(
        index=data["index"],
        cases=CaseLedger.from_json(data["cases"]),
        message_hist=data["message_hist"].encode(),
        case_hist=data["case_hist"].encode(),
        per_second=[(s, h.encode()) for s, h in data["per_second"]],
        counters=data["counters"],
        errors=data["errors"],
        rejected=data["rejected"],
    )


__all__ = [
    "PATHS",
    "Generator",
    "GeneratorResult",
    "GeneratorSpec",
    "new_histogram",
    "result_from_json",
    "result_to_json",
    "spec_from_json",
]
