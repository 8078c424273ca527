"""Where committed events go: the topics of their audience, several per MQTT message.

The umpire publishes with it, the replay re-publishes with it, and a catch-up
cuts its stream with the same `Chunker`, so every path sends events the same way.
Who gets what is a `Router`'s business: `PartyRouter` for an exercise, where
each party reads its own topics; a load run hands the umpire one that serves
gateways (`simulator.load.umpire.GatewayRouter`).
"""

import asyncio
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Sequence
from typing import Protocol

from simulator.eventlog import Event, to_json_line
from simulator.messaging.bus import Bus
from simulator.messaging.topics import Topics
from simulator.protocol import is_party_id
from simulator.records import UMPIRE_SOURCE, audience, is_message_event, message_payload

# A message of committed events (published or caught up) stays well under the wire
# limit (wire.MAX_PAYLOAD_BYTES, 256 KiB) and the broker's: over it, it would be
# refused or dropped. Large or many events go in several messages.
EVENTS_MESSAGE_BYTES = 128 * 1024


def routes(event: Event, topics: Topics, *, private: bool = False) -> list[str]:
    """The topics a committed event is published on: only where its audience reads.

    `private` (a confidential case, Art. 6.3): a message goes to its two
    parties' inboxes instead of the log topic, which observers read.
    """
    who = audience(event)
    if who is None:
        return [topics.clock]
    if private and is_message_event(event.type) and event.sender and event.recipient:
        return [topics.inbox(p) for p in (event.sender, event.recipient) if is_party_id(p)]
    if is_message_event(event.type) and event.sender and event.recipient:
        return [topics.log(event.sender, event.recipient)]
    return [topics.log(UMPIRE_SOURCE, party) for party in sorted(who)]


def events_payload(
    lines: Sequence[str], *, replay: bool = False, partition: int | None = None
) -> bytes:
    tail = b'],"replay":true}' if replay else b"]}"
    head = (
        b'{"kind":"events","events":['
        if partition is None
        else b'{"kind":"events","partition":%d,"events":[' % partition
    )
    return head + ",".join(lines).encode() + tail


def confidential_cases(events: Iterable[Event]) -> set[str]:
    """Cases whose request asked for confidentiality (Art. 6.3), from their committed events."""
    return {
        e.subject
        for e in events
        if e.subject and is_message_event(e.type) and message_payload(e).get("confidential")
    }


class Chunker:
    """Cuts a stream of event lines into messages of at most `limit` bytes and `count` lines.

    `add` returns the finished chunk when a line does not fit (a longer line goes
    alone); `rest` the last one. Streams: a catch-up never holds the whole log.
    """

    def __init__(self, *, limit: int = EVENTS_MESSAGE_BYTES, count: int | None = None) -> None:
        self.limit = limit
        self.count = count
        self.lines: list[str] = []
        self.size = 0

    def add(self, line: str) -> list[str] | None:
        full = None
        if self.lines and (self.size + len(line) > self.limit or len(self.lines) == self.count):
            full, self.lines, self.size = self.lines, [], 0
        self.lines.append(line)
        self.size += len(line) + 1
        return full

    def rest(self) -> list[str]:
        rest, self.lines, self.size = self.lines, [], 0
        return rest


async def publish_events(
    bus: Bus,
    topics: Topics,
    events: Sequence[Event],
    *,
    replay: bool = False,
    private_cases: Container[str] = frozenset(),
    concurrent: bool = False,
    route: Callable[[Event, bool], Iterable[str]] | None = None,
    partition: int | None = None,
) -> int:
    """Publish committed events grouped by topic, several per MQTT message; returns messages.

    `concurrent` puts every message in flight at once (a load run's umpire) instead
    of awaiting each acknowledgement in turn; messages still leave in order.
    `route(event, private)` names an event's topics where they are not `routes`
    (a load run's gateways). `partition`: the partition the events are of, said in
    every message, where an exercise's cases are split among umpires.
    """
    by_topic: dict[str, list[str]] = defaultdict(list)
    # A message's topics follow from its sender, recipient and privacy alone, and a
    # batch holds many messages between the same two parties: worked out once each.
    message_routes: dict[tuple[str | None, str | None, bool], list[str]] = {}

    def pick(event: Event, private: bool) -> list[str]:
        if route is None:
            return routes(event, topics, private=private)
        return list(route(event, private))

    for event in events:
        line = to_json_line(event)
        private = event.subject in private_cases
        if is_message_event(event.type):
            key = (event.sender, event.recipient, private)
            found = message_routes.get(key)
            if found is None:
                found = message_routes[key] = pick(event, private)
        else:
            found = pick(event, private)
        for topic in found:
            by_topic[topic].append(line)
    payloads = []
    for topic, lines in by_topic.items():
        chunker = Chunker()
        chunks = [full for line in lines if (full := chunker.add(line)) is not None]
        chunks.append(chunker.rest())
        payloads += [
            (topic, events_payload(chunk, replay=replay, partition=partition)) for chunk in chunks
        ]
    if concurrent:
        async with asyncio.TaskGroup() as group:
            for topic, payload in payloads:
                group.create_task(bus.publish(topic, payload))
    else:
        for topic, payload in payloads:
            await bus.publish(topic, payload)
    return len(payloads)


# The confidential cases among some events (Art. 6.3), as the umpire knows them.
ConfidentialCases = Callable[[Sequence[Event]], Container[str]]


class Router(Protocol):
    def may_see(self, principal: str, who: frozenset[str] | None) -> bool:
        """Whether `principal` may be sent an event whose audience is `who` (catch-up)."""
        ...

    async def publish(self, events: Sequence[Event], confidential: ConfidentialCases) -> None:
        """Publish committed events to whoever may see them."""
        ...


class PartyRouter:
    """Each party reads its own topics (`routes`); one acknowledgement after another."""

    def __init__(self, bus: Bus, topics: Topics, *, partition: int | None = None) -> None:
        self.bus = bus
        self.topics = topics
        # The partition whose log the events are of, said in each message (or None).
        self.partition = partition

    def may_see(self, principal: str, who: frozenset[str] | None) -> bool:
        return who is None or principal in who

    async def publish(self, events: Sequence[Event], confidential: ConfidentialCases) -> None:
        await publish_events(
            self.bus,
            self.topics,
            events,
            private_cases=confidential(events),
            partition=self.partition,
        )
