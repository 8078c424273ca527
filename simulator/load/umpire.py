"""The umpire of a load run: the real `Umpire`, taking batches of submissions, serving many parties.

It is the exercise's `Umpire`, composed with a load run's own parts (its
intake, its router and its driver; nothing overridden), which differ from an
exercise's only where scale demands it:

- a party may put several submissions in one MQTT message (`SubmissionBatch`);
  each is still decided on its own, exactly as if it had come alone;
- a *gateway* may speak for several parties (the default mode of `simulator
  load`: one per generator process, as an agency's message switch would). It
  is a principal of its own with a party's topics, so the brokers' ACLs hold
  it to its submit topic and its inbox; the umpire takes from it submissions
  of its own parties only (any other is rejected like a spoofed sender), and
  sends it, on its inbox, every committed event one of its parties may see,
  once, however many of its parties see it. Without gateways a busy run moved
  three MQTT messages per committed event whatever the batching, since each
  party's share of the traffic is small; with them, batches fill up with load;
- a submission is decoded once, with orjson and the typed models, without
  the exercise intake's depth walk (`BatchIntake`);
- its driver is the load pipeline (`simulator.umpire.pipeline`): deciding,
  appending and publishing overlap, and case timers are checked once a
  second rather than after every batch;
- the committed events of one batch go out on their topics concurrently,
  not one PUBACK after another (`GatewayRouter`);
- there are no clock markers: load generators catch up by position.

Everything else (validation, the fold, violations, idempotency by message
id, batched appends to the durable log, catch-up) is the exercise's code.
"""

import asyncio
import contextlib
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.eventlog import Event
from simulator.messaging.bus import Bus
from simulator.messaging.routing import ConfidentialCases, publish_events
from simulator.messaging.topics import Topics
from simulator.messaging.wire import Submission, describe
from simulator.protocol.ids import PARTY_ID_PATTERN, PartyId
from simulator.records import audience
from simulator.transport import Transport
from simulator.umpire import Umpire, UmpireResult
from simulator.umpire.intake import elsewhere, refuse_all, reused_reason, stranger_reason
from simulator.umpire.pipeline import Pipeline
from simulator.umpire.sequencer import Decision, Sequencer


class SubmissionBatch(BaseModel):
    """Several submissions of one party in one MQTT message (each keeps its own seq)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["submissions"] = "submissions"
    party: PartyId
    items: Annotated[tuple[Submission, ...], Field(min_length=1, max_length=10_000)]


# Submissions decided in one turn of the driver at most (`BatchIntake.stage`).
STAGE_MAX = 2000


class SeqHashes:
    """One party's seq -> hash of the submission decided under it, in 8 bytes a seq.

    A dict of ints cost about 100 bytes a submission, for the whole run (1M
    submissions: 100 MB). A party numbers its submissions 1, 2, 3, ..., so they
    sit in an array indexed by seq; a seq far beyond the last (a hostile one)
    and a hash of 0 (the array's "none") go in a dict beside it.
    """

    __slots__ = ("_dense", "_sparse")
    # How far past the array's end a seq may be and still extend it.
    GAP = 4096

    def __init__(self) -> None:
        self._dense = array("q")
        self._sparse: dict[int, int] = {}

    def get(self, seq: int) -> int | None:
        if 0 <= seq < len(self._dense) and self._dense[seq]:
            return self._dense[seq]
        return self._sparse.get(seq)

    def __contains__(self, seq: int) -> bool:
        return self.get(seq) is not None

    def __setitem__(self, seq: int, digest: int) -> None:
        dense = self._dense
        if digest == 0 or not 0 <= seq < len(dense) + self.GAP:
            self._sparse[seq] = digest
            return
        if seq >= len(dense):
            dense.extend(array("q", bytes(8 * (seq + 1 - len(dense)))))
        dense[seq] = digest


@dataclass
class UmpireCounters:
    mqtt_in: int = 0
    mqtt_out: int = 0
    submissions: int = 0


class BatchIntake:
    """Batches of submissions, from parties and from the gateways that speak for them."""

    def __init__(
        self,
        sequencer: Sequencer,
        parties: Iterable[str],
        gateways: Mapping[str, frozenset[str]],
        counters: UmpireCounters,
        partition: tuple[int, int] | None = None,
    ) -> None:
        self.sequencer = sequencer
        # (this umpire's partition, how many there are), where the cases are split.
        self.partition = partition
        self.parties = frozenset(parties)
        self.gateways = gateways
        self.counters = counters
        self.decoded: dict[str, dict[int, tuple[Submission, bytes]]] = defaultdict(dict)
        # Decoded again, strictly, by the sequencer, which records the rejection and why.
        self.malformed: list[tuple[str, bytes]] = []
        # Found wanting here (a batch as a whole, a reused seq, a stranger):
        # (principal, payload, reason, seq), staged as rejections.
        self.refused: list[tuple[str, bytes, str, int | None]] = []
        # Party -> seq -> hash of the submission decided under it (a resend or a reuse?).
        self.seen_seqs: dict[str, SeqHashes] = defaultdict(SeqHashes)

    def speaks(self, principal: str) -> bool:
        return principal in self.gateways or principal in self.parties

    def take(self, principal: str, payload: bytes) -> None:
        self.counters.mqtt_in += 1
        if not self.speaks(principal):
            self.refused.append((principal, payload, stranger_reason(principal), None))
            return
        # orjson, without the exercise intake's depth walk, which cost a quarter of the
        # umpire's time here: orjson refuses NaN and nesting past 1024 levels in C, and
        # everything it passes is validated into typed models next. Whatever fails is
        # decoded again, strictly, by the sequencer, which records why.
        data = _loads(payload, self.sequencer.max_payload)
        kind = data.get("kind") if data is not None else None
        if data is None or kind not in ("submissions", "submission"):
            self.malformed.append((principal, payload))
            return
        if kind == "submissions":
            # The sequencer knows single submissions only: what is wrong with a batch
            # as a whole is said here, and recorded as its rejection.
            batch = _plain_batch(data)
            if batch is None:
                try:
                    batch = SubmissionBatch.model_validate(data)
                except ValidationError as exc:
                    reason = f"submission batch: {describe(exc)}"
                    self.refused.append((principal, payload, reason, None))
                    return
            if batch.party != principal:
                self.refused.append(
                    (
                        principal,
                        payload,
                        f"submission batch claims {batch.party!r} but came on "
                        f"{principal!r}'s submit topic",
                        None,
                    )
                )
                return
            items = [
                (item, orjson.dumps(raw))
                for item, raw in zip(batch.items, data["items"], strict=True)
            ]
        else:
            try:
                items = [(Submission.model_validate(data), payload)]
            except ValidationError:
                self.malformed.append((principal, payload))
                return
        # A gateway speaks for its parties, a party only for itself; anything else is
        # a spoof, which the sequencer rejects with its reason (sender vs connection).
        allowed = self.gateways.get(principal) or (principal,)
        for submission, raw in items:
            claimed = submission.party
            if claimed not in allowed:
                self.malformed.append((principal, raw))
                continue
            if self.partition is not None and (wrong := elsewhere(submission, self.partition)):
                self.refused.append((principal, raw, wrong, submission.seq))
                continue
            seq = submission.seq
            first = self.seen_seqs[claimed].get(seq)
            if first is None:
                waiting = self.decoded[claimed].get(seq)
                if waiting is None:
                    self.decoded[claimed][seq] = (submission, raw)
                    continue
                first = hash(waiting[1])
            if first != hash(raw):
                self.refused.append((principal, raw, reused_reason(claimed, seq), seq))

    def refuse(self, principal: str, payload: bytes, reason: str) -> None:
        self.refused.append((principal, payload, reason, None))

    def waiting(self) -> bool:
        return bool(self.decoded or self.malformed or self.refused)

    def has(self, party: str, seq: int) -> bool:
        return seq in self.decoded.get(party, {}) or seq in self.seen_seqs[party]

    def decide(self, party: str, seq: int, at: datetime) -> Decision | None:
        found = self.decoded[party].pop(seq, None)
        if found is None or seq in self.seen_seqs[party]:
            return None
        submission, raw = found
        self.seen_seqs[party][seq] = hash(raw)
        self.counters.submissions += 1
        return self.sequencer.submission(submission, party, at, raw)

    def stage(self, at: datetime) -> list[Decision]:
        # In arrival order per party and sequence number; then what did not decode.
        # At most STAGE_MAX a call: past capacity tens of thousands wait, and deciding
        # them in one go held the event loop (reading, acknowledging, publishing) for
        # seconds. The rest waits, in order, for the driver's next turn.
        decisions: list[Decision] = []
        if self.decoded:
            waiting, self.decoded = self.decoded, defaultdict(dict)
            sequencer = self.sequencer
            budget = STAGE_MAX
            for party, items in waiting.items():
                if budget <= 0:
                    self.decoded[party] = items
                    continue
                seen = self.seen_seqs[party]
                for seq, (submission, raw) in list(items.items()):
                    if budget <= 0:
                        break
                    del items[seq]
                    if seq in seen:
                        continue
                    seen[seq] = hash(raw)
                    self.counters.submissions += 1
                    budget -= 1
                    decisions.append(sequencer.submission(submission, party, at, raw))
                if items:
                    self.decoded[party] = items
        malformed, self.malformed = self.malformed, []
        decisions += [self.sequencer.submit(payload, party, at) for party, payload in malformed]
        refused, self.refused = self.refused, []
        return decisions + refuse_all(self.sequencer, at, refused)


class GatewayRouter:
    """Each gateway's inbox gets, once, what any of its parties may see; all in flight at once."""

    def __init__(
        self,
        bus: Bus,
        topics: Topics,
        gateways: Mapping[str, frozenset[str]],
        counters: UmpireCounters,
        partition: int | None = None,
    ) -> None:
        self.bus = bus
        self.topics = topics
        self.partition = partition
        self.gateways = gateways
        self.gateway_of = {p: g for g, ps in gateways.items() for p in ps}
        self.counters = counters

    def may_see(self, principal: str, who: frozenset[str] | None) -> bool:
        parties = self.gateways.get(principal)
        if parties is None:
            return who is None or principal in who
        return who is None or principal in who or not parties.isdisjoint(who)

    async def publish(self, events: Sequence[Event], confidential: ConfidentialCases) -> None:
        self.counters.mqtt_out += await publish_events(
            self.bus,
            self.topics,
            events,
            # Gateways carry confidential cases on their inboxes like any other, so the
            # cases are looked up only where they change the route (the log topics).
            private_cases=frozenset() if self.gateways else confidential(events),
            concurrent=True,
            route=self.via_gateways if self.gateways else None,
            partition=self.partition,
        )

    def via_gateways(self, event: Event, private: bool) -> list[str]:
        """The inboxes of the gateways whose parties may see `event` (`private` or not)."""
        who = audience(event)
        if who is None:
            return [self.topics.inbox(g) for g in self.gateways]
        chosen = {self.gateway_of.get(p, p) for p in who}
        return [self.topics.inbox(g) for g in sorted(chosen) if g in self.gateways]


def load_umpire(
    *,
    counters: UmpireCounters,
    gateways: Mapping[str, Iterable[str]] | None = None,
    **umpire: Any,
) -> Umpire:
    """The umpire of a load run: see the module docstring; `UmpireSettings(simulated=False)`.

    `gateways` maps a gateway to the parties it speaks for; `counters` is
    kept up to date with the umpire's MQTT traffic and submissions. Where the
    cases are split among umpires (`Topics.partitions`), `UmpireSettings.partition` says
    which this one owns: it decides only its own cases' submissions.
    """
    # Gateway -> the parties it speaks for (see the module docstring).
    by_gateway = {g: frozenset(ps) for g, ps in (gateways or {}).items()}
    parties = tuple(umpire.pop("parties"))
    # The load pipeline is its driver, unless a test hands in another.
    umpire.setdefault("driver", Pipeline)
    settings = umpire.get("settings")
    number = settings.partition if settings is not None else None
    share = None if number is None else (number, umpire["topics"].partitions)
    return Umpire(
        parties=parties,
        intake=BatchIntake(umpire["sequencer"], parties, by_gateway, counters, share),
        router=GatewayRouter(umpire["bus"], umpire["topics"], by_gateway, counters, number),
        **umpire,
    )


# How long the umpire may take to finish after the generators (its end goes out over
# the broker), and how long its broker may be gone before that wait is given up.
UMPIRE_FINISH_S = 60.0
BROKER_GONE_S = 10.0


async def umpire_stopped(
    task: "asyncio.Task[UmpireResult]", bus: Transport, broker: str
) -> str | None:
    """Let the umpire finish; why it could not, if it could not (its broker gone).

    Its end is announced over the broker: with the broker dead and not back, that
    publish never completes. It has `UMPIRE_FINISH_S`, and gives up sooner once its
    connection has been down for `BROKER_GONE_S`; the log holds what it committed.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + UMPIRE_FINISH_S
    down_since: float | None = None
    while not task.done():
        now = loop.time()
        down_since = None if bus.connected.is_set() else (down_since or now)
        if now >= give_up or (down_since is not None and now - down_since >= BROKER_GONE_S):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return (
                f"the broker ({broker}) stopped answering and did not come back: the run "
                "could not be carried to its end; the figures cover what the log holds"
            )
        await asyncio.wait({task}, timeout=1.0)
    task.result()  # the umpire's own failure, if it failed, is the run's
    return None


_BATCH_KEYS = frozenset(SubmissionBatch.model_fields)
# `due` (a simulated party's, in a realtime run) is left to validation: a load generator
# never says it.
_ITEM_KEYS = frozenset(Submission.model_fields) - {"due"}
_MAX_ITEMS = 10_000
_MAX_SEQ = 2**53
_party_id = PARTY_ID_PATTERN.fullmatch
_set_attribute = object.__setattr__


def _plain_batch(data: dict[str, Any]) -> SubmissionBatch | None:
    """`SubmissionBatch.model_validate(data)` for a batch that is plainly valid, else None.

    Plainly valid: exact JSON types, as orjson decodes them, that validation would
    take as they are (a party id matching its pattern, a sequence number that is an
    int in range, a message that is an object with text keys, no unknown keys).
    Validating a batch copied every message object (`dict[str, Any]`), only for the
    sequencer to validate each again as its message type, and cost a third of taking
    a batch in. Anything else, valid or not, is left to validation (the caller), so
    this takes nothing it refuses and builds the same models
    (tests/load/test_umpire_batches.py compares the two).
    """
    party = data.get("party")
    items = data.get("items")
    if not (
        type(party) is str
        and type(items) is list
        and 0 < len(items) <= _MAX_ITEMS
        and data.get("kind", "submissions") == "submissions"
        and _BATCH_KEYS.issuperset(data)
        and _party_id(party) is not None
    ):
        return None
    submissions = []
    for item in items:
        if type(item) is not dict:
            return None
        get = item.get
        claimed = get("party")
        seq = get("seq")
        message = get("message")
        if not (
            type(claimed) is str
            and type(seq) is int
            and 1 <= seq <= _MAX_SEQ
            and type(message) is dict
            and get("kind", "submission") == "submission"
            and _ITEM_KEYS.issuperset(item)
            and (claimed == party or _party_id(claimed) is not None)
        ):
            return None
        fields = {
            "kind": "submission",
            "party": claimed,
            "seq": seq,
            "message": message,
            "due": None,
        }
        submissions.append(_built(Submission, fields, set(item)))
    fields = {"kind": "submissions", "party": party, "items": tuple(submissions)}
    return _built(SubmissionBatch, fields, set(data))


_M = TypeVar("_M", bound=BaseModel)


def _built(model: type[_M], fields: dict[str, Any], given: set[str]) -> _M:
    """An instance holding `fields` (`given`: the keys the input had), as validation makes it.

    As `model_construct`, minus its per-field loop: for values validation would
    return as they are.
    """
    instance = model.__new__(model)
    _set_attribute(instance, "__dict__", fields)
    _set_attribute(instance, "__pydantic_fields_set__", given)
    _set_attribute(instance, "__pydantic_extra__", None)
    _set_attribute(instance, "__pydantic_private__", None)
    return instance


def _loads(payload: bytes, limit: int) -> dict[str, Any] | None:
    if len(payload) > limit:
        return None
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def batch_payload(party: str, items: Sequence[bytes]) -> bytes:
    """A `SubmissionBatch` from already-encoded submissions (what the generators send)."""
    return (
        b'{"kind":"submissions","party":"'
        + party.encode()
        + b'","items":['
        + b",".join(items)
        + b"]}"
    )


__all__ = [
    "BatchIntake",
    "GatewayRouter",
    "SeqHashes",
    "SubmissionBatch",
    "UmpireCounters",
    "batch_payload",
    "load_umpire",
    "umpire_stopped",
]
