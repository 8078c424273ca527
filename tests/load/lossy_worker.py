"""A load generator process whose first submissions vanish after the broker took them.

`python -m tests.load.lossy_worker N` runs `simulator.load.worker` with a
generator that drops its first N submission publishes without a word: no
failure, no dropped connection, as a broker that acknowledged and then lost
them would (faults item 9). Only the outbox's evidence can bring them back.
"""

import sys

from simulator.load import worker
from simulator.load.generator import Generator
from simulator.party.outbox import Outgoing


class LossyGenerator(Generator):
    to_drop = 0

    def _publish(
        self, principal: str, payload: bytes, partition: int, items: list[Outgoing]
    ) -> None:
        if LossyGenerator.to_drop > 0:
            LossyGenerator.to_drop -= 1
            self.counters["mqtt_out"] += 1  # it went out, as far as the generator knows
            return
        super()._publish(principal, payload, partition, items)


if __name__ == "__main__":
    LossyGenerator.to_drop = int(sys.argv[1])
    # The worker's own name for the class it runs.
    vars(worker)["Generator"] = LossyGenerator
    worker.main()
