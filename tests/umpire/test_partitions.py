"""The agenda the partitions of a realtime run share: each item at its own time, to its owner."""

import random
from datetime import timedelta

from simulator.protocol.ids import partition_of
from simulator.scenario import parse_scenario
from simulator.umpire.agenda import ScenarioAgenda
from simulator.umpire.partitions import SharedAgenda
from tests.scenario.samples import two_parties

# Ten cases, one a day from day 1: their ids spread over two partitions.
DAILY = (
    two_parties("daily", "A case a day")
    + """\
generators:
  - {id: daily, from: alpha, to: beta, count: 10, start: 1d, every: 1d, send: {type: withdrawal}}
"""
)


def test_a_partition_behind_the_other_takes_what_it_found_due_for_it_only_by_then() -> None:
    """Each partition's umpire goes at its own pace: it waits for its parties before it
    takes what is due. One that was behind (still at day 2) took everything the other
    (at day 9) had found due for it, days early: a stranger's season forked into other
    cases. Now each item is held with its own due time and handed out by then."""
    scenario = parse_scenario(DAILY, "tests/umpire/daily.yaml")
    shared = SharedAgenda(ScenarioAgenda(scenario, random.Random(1)), partitions=2)
    woken: list[int] = []
    shared.wake = woken.append
    day = scenario.start + timedelta(days=1)
    owners = {n: partition_of(f"daily-{n:04d}", 2) for n in range(1, 11)}
    assert set(owners.values()) == {0, 1}

    ahead = shared.take_due(0, day + timedelta(days=8))
    assert [m.case_id for m, _ in ahead] == [
        f"daily-{n:04d}" for n in range(1, 10) if owners[n] == 0
    ]
    assert set(woken) == {1}
    behind = shared.view(1)
    firsts = [n for n in range(1, 10) if owners[n] == 1]
    assert behind.next_time() == day + timedelta(days=firsts[0] - 1)
    # At day 2, partition 1 gets what was due for it by day 2, not what came due later.
    taken = behind.due(day + timedelta(days=1))
    assert [m.case_id for m, _ in taken] == [f"daily-{n:04d}" for n in firsts if n <= 2]
    rest = [n for n in firsts if n > 2]
    assert behind.next_time() == day + timedelta(days=rest[0] - 1)
    assert [m.case_id for m, _ in behind.due(day + timedelta(days=8))] == [
        f"daily-{n:04d}" for n in rest
    ]
    # The tenth, due at day 10, is still the agenda's.
    assert behind.next_time() == day + timedelta(days=9)
