"""The umpire of a load run: the real `Umpire`, taking batches of submissions, serving many parties.

It differs from an exercise's real-time umpire only where scale demands it:

- a party may put several submissions in one MQTT message (`SubmissionBatch`,
  the default mode of `simulator load`); each is still decided on its own,
  exactly as if it had come alone;
- a submission is decoded once, not three times (on arrival, at staging,
  in the sequencer);
- case timers are checked once a second rather than after every batch
  (checking walks every case, and a load run has hundreds of thousands);
- the committed events of one batch go out on their topics concurrently,
  not one PUBACK after another;
- there are no round markers: load generators do not report rounds.

Everything else (validation, the fold, violations, idempotency by message
id, batched appends to the durable log, catch-up) is the exercise's code.
"""

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.context import ScaledClock
from simulator.eventlog import Event, to_json_line
from simulator.protocol.ids import PartyId
from simulator.umpire import Umpire, UmpireResult, events_payload, routes
from simulator.wire import Submission, WireError, decode_json

TIMER_CHECK_S = 1.0


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


class LoadUmpire(Umpire):
    """See the module docstring; run it with `UmpireSettings(simulated=False)`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.decoded: dict[str, dict[int, tuple[Submission, bytes]]] = defaultdict(dict)
        self.counters = UmpireCounters()

    # -- receiving -------------------------------------------------------------------

    def _take_submission(self, party: str, payload: bytes) -> None:
        self.counters.mqtt_in += 1
        try:
            data = decode_json(payload, self.sequencer.max_payload)
        except WireError:
            self.malformed.append((party, payload))
            return
        kind = data.get("kind")
        try:
            if kind == "submissions":
                batch = SubmissionBatch.model_validate(data)
                items = [
                    (item, orjson.dumps(raw))
                    for item, raw in zip(batch.items, data["items"], strict=True)
                ]
            elif kind == "submission":
                items = [(Submission.model_validate(data), payload)]
            else:
                super()._take_submission(party, payload)
                return
        except ValidationError:
            # The sequencer decodes it again and records the rejection with its reason.
            self.malformed.append((party, payload))
            return
        seen = self.seen_seqs[party]
        waiting = self.decoded[party]
        for submission, raw in items:
            if submission.party != party:
                self.malformed.append((party, raw))
            elif submission.seq not in seen:
                waiting.setdefault(submission.seq, (submission, raw))

    # -- the loop --------------------------------------------------------------------

    async def _realtime(self) -> UmpireResult:
        clock = self.clock
        assert isinstance(clock, ScaledClock)
        loop = asyncio.get_running_loop()
        next_timers = loop.time()
        while True:
            if self.stop_requested:
                return await self._finish(self.stop_requested)
            now = clock.now()
            if loop.time() >= next_timers:
                self._stage_timers(now)
                next_timers = loop.time() + TIMER_CHECK_S
            self._stage_decoded(now)
            self._stage_inbox(now)
            self._stage_malformed(now)
            if self.sequencer.pending.events:
                await self._commit()
            else:
                await self._wait_changed(self.settings.tick_s)

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
                decision = self.sequencer.submission(submission, party, at, raw)
                if decision.notice is not None:
                    self.rejections += 1
                    self.log.warning(
                        "submission_rejected", party=party, seq=seq, reason=decision.notice.reason
                    )

    # -- publishing ------------------------------------------------------------------

    async def _publish(self, events: Sequence[Event]) -> None:
        by_topic: dict[str, list[str]] = defaultdict(list)
        for event in events:
            self.head = max(self.head, event.position)
            line = to_json_line(event)
            for topic in routes(event, self.topics):
                by_topic[topic].append(line)
        self.counters.mqtt_out += len(by_topic)
        # One topic's messages keep their order: a batch is out before the next is built.
        async with asyncio.TaskGroup() as group:
            for topic, lines in by_topic.items():
                group.create_task(self.bus.publish(topic, events_payload(lines)))


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
