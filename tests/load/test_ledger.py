"""The reconciliation's ledgers: a few bytes a case, the same answers as sets of ids."""

import pytest

from simulator.load.ledger import COMPLETED, CaseLedger, LogLedger, parse_message_id


def test_message_ids_of_a_load_run_parse_and_others_do_not() -> None:
    """`g{generator}-{case}.{step}` gives its three numbers; any other id gives None."""
    assert parse_message_id("g1-25.3") == (1, 25, 3)
    for other in ("exercise-started", "g1-25", "x1-2.3", "g1-a.3", "g-1.2", "rej-4"):
        assert parse_message_id(other) is None, other


def test_a_case_ledger_round_trips_through_json() -> None:
    """What a generator ships to the parent comes back byte for byte."""
    ledger = CaseLedger(10)
    ledger.start(0, "accepted")
    ledger.start(1, "oral")
    ledger.submitted[1] = 3
    ledger.recipient_seen[1] = 0b101
    ledger.state[1] = COMPLETED
    back = CaseLedger.from_json(ledger.to_json())
    assert back == ledger
    assert back.started == 2


def test_cases_start_in_order() -> None:
    """A case number out of order is a bug in the schedule, said at once."""
    ledger = CaseLedger(5)
    ledger.start(0, "accepted")
    with pytest.raises(ValueError, match="out of order"):
        ledger.start(2, "accepted")


def test_the_log_ledger_counts_each_message_once_and_repeats_apart() -> None:
    """A message twice in the log is one duplicate; ids of no generator are foreign."""
    log = LogLedger({0: 3, 1: 1})
    for mid in ("g0-0.0", "g0-0.1", "g0-2.0", "g1-0.0", "g0-0.1", "g5-0.0", "g0-9.0", "x"):
        log.add(mid)
    assert log.committed[0] == bytearray([0b11, 0, 0b1])
    assert log.duplicated == 1
    assert log.foreign == 3
    assert log.total() == 4


def test_an_id_like_a_generators_but_no_conversations_step_is_foreign() -> None:
    """`g0-0.9` (a step past a conversation's eight bits) or a negative step, sent by a
    participant, had crashed the reconciliation (`byte must be in range(0, 256)`)."""
    assert parse_message_id("g0-0.9") is None
    assert parse_message_id("g0-0.-1") is None
    ledger = LogLedger({0: 4})
    for message_id in ("g0-0.9", "g0-0.-1", "g0-0.1"):
        ledger.add(message_id)
    assert ledger.foreign == 2
    assert ledger.total() == 1
