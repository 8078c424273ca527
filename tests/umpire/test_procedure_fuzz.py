"""The protocol's random plays, decided by the umpire's sequencer and read back from its log.

The oracle machine (tests/protocol/test_state_machine.py) folds each play
through `apply` and `elapse`. Here the same plays go through the decide
path a live run takes: each message recorded by a `Sequencer`, each
deadline staged by its timer walk (`elapse_due`), every batch committed
with positions and hashes. Then the log is folded as a report folds it
(`CaseProjection`). The umpire's live cases, the projection's and the
oracle's must be one and the same; so must the violations recorded, those
the projection finds, and the oracle's; and no position may diverge.
"""

from datetime import datetime

from hypothesis import HealthCheck, settings

from simulator.eventlog import Event
from simulator.projections import CaseProjection
from simulator.protocol import Violation
from simulator.records import read_violations
from simulator.umpire.sequencer import Sequencer
from tests.protocol.builders import AGREEMENT, T0
from tests.protocol.test_state_machine import ProcedureMachine
from tests.umpire.committed import commit_staged


class _Log:
    """A sequencer and the log its batches make."""

    def __init__(self) -> None:
        self.sequencer = Sequencer(AGREEMENT, "fuzz", wallclock=lambda: T0)
        self.events: list[Event] = []
        self._versions: dict[str, int] = {}
        self._timers = 0

    def commit(self) -> None:
        commit_staged(self.sequencer, self.events, self._versions)

    def timers(self, at: datetime) -> None:
        def numbered(case_id: str) -> str:
            self._timers += 1
            return f"umpire-elapsed-{self._timers}"

        self.sequencer.elapse_due(at, numbered)
        self.commit()


class UmpireMachine(ProcedureMachine):
    """The oracle's plays, through the sequencer, the log and the case projection."""

    def teardown(self) -> None:
        super().teardown()
        log = _Log()
        for _case_id, message, at in self.history:
            if message is None:
                # The machine's clock moved: the umpire's timers walk every case due.
                log.timers(at)
                continue
            log.sequencer.record(message, at, party=message.sender)
            log.commit()
        live = dict(log.sequencer.cases)
        folded = {k: v for k, v in self.cases.items() if v is not None}
        assert live == folded
        recorded: list[Violation] = []
        for event in log.events:
            recorded.extend(read_violations(event) or ())
        assert recorded == self.all_violations

        projection = CaseProjection(AGREEMENT)
        projection.apply_all(log.events)
        assert projection.cases == live
        assert projection.divergences == []
        assert [f.violation for f in projection.findings] == recorded


UmpireMachine.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_plays_decide_and_fold_alike = UmpireMachine.TestCase
