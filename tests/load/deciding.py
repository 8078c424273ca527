"""A real load-run umpire for tests of its decisions: real sequencer and SQLite store, no broker."""

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simulator.context import ScaledClock
from simulator.eventlog import SqliteEventStore
from simulator.load.conversation import load_party
from simulator.load.umpire import UmpireCounters
from simulator.load.umpire import load_umpire as compose
from simulator.messaging.bus import Incoming
from simulator.messaging.topics import Topics
from simulator.protocol import Agreement
from simulator.umpire import Umpire, UmpireSettings
from simulator.umpire.sequencer import Sequencer

AT = datetime(2026, 1, 1, tzinfo=UTC)
EXERCISE = "load-test"


class UnusedBus:
    """No broker: deciding never publishes, subscribes or reads."""

    async def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        raise AssertionError(f"deciding published to {topic}")

    async def subscribe(self, *filters: str, qos: int = 1) -> None:
        raise AssertionError("deciding subscribed")

    def messages(self) -> AsyncIterator[Incoming]:
        raise AssertionError("deciding read messages")


def sequencer(parties: Sequence[str]) -> Sequencer:
    agreement = Agreement.of([load_party(p) for p in parties])
    return Sequencer(agreement, EXERCISE, wallclock=lambda: AT)


def load_umpire(
    tmp_path: Path, parties: Sequence[str], gateways: Mapping[str, Sequence[str]] | None = None
) -> Umpire:
    return compose(
        counters=UmpireCounters(),
        sequencer=sequencer(parties),
        store=SqliteEventStore(tmp_path / "log.db", now=lambda: AT),
        bus=UnusedBus(),
        topics=Topics(EXERCISE),
        parties=parties,
        reporting=(),
        clock=ScaledClock(AT),
        end=AT + timedelta(days=1),
        settings=UmpireSettings(simulated=False),
        gateways=gateways,
    )
