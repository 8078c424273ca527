"""The load pipeline appends what queued during an append in one go (group commit)."""

import asyncio
from pathlib import Path

import orjson

from simulator.eventlog import Event
from simulator.load.conversation import Conversation, load_party
from simulator.umpire.pipeline import Pipeline
from simulator.umpire.sequencer import Pending
from tests.load.deciding import AT, load_umpire

PARTIES = ("p000", "p001")


def _batch(umpire_pipeline: Pipeline, n: int) -> Pending:
    """One decided batch: party p000's request in case g0-n."""
    conversation = Conversation(f"g0-{n}", "accepted", load_party("p000"), load_party("p001"))
    item = {"kind": "submission", "party": "p000", "seq": n, "message": conversation.message(0)}
    sequencer = umpire_pipeline.umpire.sequencer
    decision = sequencer.submit(orjson.dumps(item), "p000", AT)
    assert decision.event is not None
    batch = sequencer.take()
    sequencer.committed(batch)
    return batch


async def test_batches_handed_on_during_an_append_go_in_the_next_one_together(
    tmp_path: Path,
) -> None:
    umpire = load_umpire(tmp_path, PARTIES)
    pipeline = Pipeline(umpire)
    appended: list[list[str]] = []
    first_in = asyncio.Event()
    release = asyncio.Event()
    original = umpire.append

    async def held_append(batch: Pending) -> list[Event]:
        appended.append([e.id for e in batch.events])
        if len(appended) == 1:
            first_in.set()
            await release.wait()
        return await original(batch)

    umpire.append = held_append  # type: ignore[method-assign]
    async with umpire.store:
        appender = asyncio.create_task(pipeline._appender())
        try:
            batches = [_batch(pipeline, n) for n in (1, 2, 3)]
            await pipeline._batches.put(batches[0])
            await first_in.wait()
            # While the first append runs, two more are handed on.
            await pipeline._batches.put(batches[1])
            await pipeline._batches.put(batches[2])
            release.set()
            async with asyncio.timeout(10):
                await pipeline._batches.join()
        finally:
            appender.cancel()
        ids = [[e.id for e in b.events] for b in batches]
        assert appended == [ids[0], ids[1] + ids[2]]
        committed = [await pipeline._appended.get() for _ in range(2)]
        assert [[e.id for e in c] for c in committed] == appended
        # In the log, in order, one position after another.
        positions = [e.position for c in committed for e in c]
        assert positions == sorted(positions) == list(range(positions[0], positions[0] + 3))
