"""`frozen_heap`: the heap is frozen while a load run goes on, and handed back after it."""

import asyncio
import gc

from simulator.load.heap import YOUNG_EVERY, frozen_heap


async def test_the_heap_is_frozen_during_the_block_and_unfrozen_after() -> None:
    assert gc.get_freeze_count() == 0
    before = gc.get_threshold()
    async with frozen_heap(every=0.01):
        assert gc.get_threshold() == YOUNG_EVERY
        kept = [[n] for n in range(1000)]  # tracked objects to freeze
        await asyncio.sleep(0.1)
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


async def test_the_heap_is_unfrozen_when_the_block_fails() -> None:
    try:
        async with frozen_heap(every=0.01):
            await asyncio.sleep(0.05)
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
