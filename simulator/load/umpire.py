"""The umpire of a load run: the real `Umpire`, taking batches of submissions, serving many parties.

It differs from an exercise's real-time umpire only where scale demands it:

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
- a submission is decoded once, not three times (on arrival, at staging,
  in the sequencer);
- its driver is the load pipeline (`simulator.umpire.pipeline`): deciding,
  appending and publishing overlap, and case timers are checked once a
  second rather than after every batch;
- the committed events of one batch go out on their topics concurrently,
  not one PUBACK after another;
- there are no round markers: load generators do not report rounds.

Everything else (validation, the fold, violations, idempotency by message
id, batched appends to the durable log, catch-up) is the exercise's code.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.eventlog import Event
from simulator.messaging.routing import publish_events
from simulator.messaging.wire import Submission, describe
from simulator.protocol.ids import PartyId
from simulator.records import audience
from simulator.umpire import Umpire
from simulator.umpire.pipeline import Pipeline


class SubmissionBatch(BaseModel):
    """Several submissions of one party in one MQTT message (each keeps its own seq)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["submissions"] = "submissions"
    party: PartyId
    items: Annotated[tuple[Submission, ...], Field(min_length=1, max_length=10_000)]


@dataclass
class UmpireCounters:
    mqtt_in: int = 0
    mqtt_out: int = 0
    submissions: int = 0
    catch_ups: int = 0


class LoadUmpire(Umpire):
    """See the module docstring; run it with `UmpireSettings(simulated=False)`."""

    def __init__(
        self, *, gateways: Mapping[str, Iterable[str]] | None = None, **umpire: Any
    ) -> None:
        # The load pipeline is its driver, unless a test hands in another.
        umpire.setdefault("driver", Pipeline)
        super().__init__(**umpire)
        # Gateway -> the parties it speaks for (see the module docstring), and back.
        self.gateways = {g: frozenset(ps) for g, ps in (gateways or {}).items()}
        self.gateway_of = {p: g for g, ps in self.gateways.items() for p in ps}
        self.decoded: dict[str, dict[int, tuple[Submission, bytes]]] = defaultdict(dict)
        # Batches refused as a whole: (principal, payload, reason), staged as rejections.
        self.refused: list[tuple[str, bytes, str]] = []
        self.counters = UmpireCounters()

    # -- receiving -------------------------------------------------------------------

    def _speaks(self, principal: str) -> bool:
        return principal in self.gateways or super()._speaks(principal)

    def _may_see(self, principal: str, who: frozenset[str] | None) -> bool:
        parties = self.gateways.get(principal)
        if parties is None:
            return super()._may_see(principal, who)
        return who is None or principal in who or not parties.isdisjoint(who)

    def _take_submission(self, party: str, payload: bytes) -> None:
        self.counters.mqtt_in += 1
        # orjson, without the exercise umpire's depth walk, which cost a quarter of the
        # umpire's time here: orjson refuses NaN and nesting past 1024 levels in C, and
        # everything it passes is validated into typed models next. Whatever fails is
        # decoded again, strictly, by the sequencer, which records why.
        data = _loads(payload, self.sequencer.max_payload)
        if data is None:
            self.malformed.append((party, payload))
            return
        kind = data.get("kind")
        if kind == "submissions":
            # The sequencer knows single submissions only: what is wrong with a batch
            # as a whole is said here, and recorded as its rejection.
            try:
                batch = SubmissionBatch.model_validate(data)
            except ValidationError as exc:
                self.refused.append((party, payload, f"submission batch: {describe(exc)}"))
                return
            if batch.party != party:
                self.refused.append(
                    (
                        party,
                        payload,
                        f"submission batch claims {batch.party!r} but came on "
                        f"{party!r}'s submit topic",
                    )
                )
                return
            items = [
                (item, orjson.dumps(raw))
                for item, raw in zip(batch.items, data["items"], strict=True)
            ]
        elif kind == "submission":
            try:
                items = [(Submission.model_validate(data), payload)]
            except ValidationError:
                # The sequencer decodes it again and records the rejection with its reason.
                self.malformed.append((party, payload))
                return
        else:
            super()._take_submission(party, payload)
            return
        # A gateway speaks for its parties, a party only for itself; anything else is
        # a spoof, which the sequencer rejects with its reason (sender vs connection).
        allowed = self.gateways.get(party) or (party,)
        for submission, raw in items:
            claimed = submission.party
            if claimed not in allowed:
                self.malformed.append((party, raw))
            elif submission.seq not in self.seen_seqs[claimed]:
                self.decoded[claimed].setdefault(submission.seq, (submission, raw))

    # -- staging ---------------------------------------------------------------------

    def _stage_arrivals(self, at: datetime) -> None:
        # Batches first, in arrival order per party and sequence number; then the rest.
        self._stage_decoded(at)
        super()._stage_arrivals(at)

    def _stage_malformed(self, at: datetime) -> None:
        super()._stage_malformed(at)
        refused, self.refused = self.refused, []
        for party, payload, reason in refused:
            self._count(self.sequencer.refuse(party, at, reason, payload))

    def _stage_decoded(self, at: datetime) -> None:
        if not self.decoded:
            return
        waiting, self.decoded = self.decoded, defaultdict(dict)
        for party, items in waiting.items():
            seen = self.seen_seqs[party]
            for seq, (submission, raw) in items.items():
                if seq in seen:
                    continue
                seen.add(seq)
                self.counters.submissions += 1
                self._count(self.sequencer.submission(submission, party, at, raw))

    # -- catch-up --------------------------------------------------------------------

    async def _serve_catch_up(self, party: str, after: int) -> None:
        await super()._serve_catch_up(party, after)
        self.counters.catch_ups += 1

    # -- publishing ------------------------------------------------------------------

    async def _publish(self, events: Sequence[Event]) -> None:
        # Not the exercise umpire's: no visible counts to keep (the generators catch up
        # by position), and every message in flight at once.
        if events:  # committed in position order: the last is the head
            self.head = max(self.head, events[-1].position)
        self.counters.mqtt_out += await publish_events(
            self.bus,
            self.topics,
            events,
            # Gateways carry confidential cases on their inboxes like any other, so the
            # cases are looked up only where they change the route (the log topics).
            private_cases=frozenset() if self.gateways else self._confidential(events),
            concurrent=True,
            route=self._via_gateways if self.gateways else None,
        )

    def _via_gateways(self, event: Event, private: bool) -> list[str]:
        """The inboxes of the gateways whose parties may see `event` (`private` or not)."""
        who = audience(event)
        if who is None:
            return [self.topics.inbox(g) for g in self.gateways]
        chosen = {self.gateway_of.get(p, p) for p in who}
        return [self.topics.inbox(g) for g in sorted(chosen) if g in self.gateways]


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


__all__ = ["LoadUmpire", "SubmissionBatch", "UmpireCounters", "batch_payload"]
