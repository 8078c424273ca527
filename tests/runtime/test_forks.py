"""A same-seed fork of every shipped scenario, at several positions, goes on as its parent did.

Before, forks of scenarios with generated cases or conditioned injects went
another way from the first event after the fork: the agenda's draws came from
one shared stream in another order, and conditions were judged on the case
states at the fork rather than as they were when they first held.
"""

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from simulator.run.exercise import RunOptions, run_exercise
from simulator.run.replay import check, fork, resume
from simulator.scenario import load_scenario, parse_scenario
from tests.runtime.test_replay import _lines, _without_generation
from tests.scenario.samples import DECLINER, offer_inject, two_parties

SCENARIOS = Path(__file__).parents[2] / "scenarios"
SHIPPED = sorted(p.name for p in SCENARIOS.glob("*.yaml"))
KILLED_FORK = Path(__file__).with_name("killed_fork.py")


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


def test_every_shipped_scenario_is_checked() -> None:
    assert len(SHIPPED) >= 10


@pytest.mark.parametrize("name", SHIPPED)
async def test_a_same_seed_fork_equals_its_parent(name: str, tmp_path: Path) -> None:
    parent = tmp_path / "parent.db"
    await run_exercise(
        load_scenario(SCENARIOS / name), RunOptions(broker="mosquitto", log=str(parent))
    )
    expected = _without_generation(await _lines(parent))
    # The long season forks at three positions, the first (19) where its second records
    # case and its first offer are both due next at one instant (they went the other
    # way round); the others at three.
    shares = (0.02, 0.3, 0.7) if len(expected) > 200 else (0.2, 0.5, 0.8)
    for share in shares:
        at = max(2, int(len(expected) * share))
        child = tmp_path / f"fork-{at}.db"
        await fork(str(parent), at, str(child), broker="mosquitto")
        forked = _without_generation(await _lines(child))
        first = next(
            (i + 1 for i, (a, b) in enumerate(zip(expected, forked, strict=False)) if a != b), None
        )
        assert forked == expected, f"fork at {at} differs from its parent at position {first}"


@pytest.mark.parametrize("moment", ["before", "after"])
async def test_a_fork_killed_around_its_copy_of_the_parent_is_resumed(
    moment: str, tmp_path: Path
) -> None:
    """A fork SIGKILLed just before or after committing its parent's first events resumes.

    Before: it wrote its metadata after the copy, so a fork killed right after it
    held events that did not say their scenario and seed, and could not be resumed.
    """
    parent = tmp_path / "parent.db"
    await run_exercise(load_scenario(SCENARIOS / "example.yaml"), RunOptions(log=str(parent)))
    child = tmp_path / "child.db"
    killed = await asyncio.create_subprocess_exec(
        sys.executable, str(KILLED_FORK), str(parent), "12", str(child), moment,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(killed.communicate(), 60)
    assert killed.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert len(await _lines(child)) == (12 if moment == "after" else 0)

    await resume(str(child))
    # As the fork would have gone: a same-seed fork goes on as its parent did.
    assert _without_generation(await _lines(child)) == _without_generation(await _lines(parent))
    assert (await check(str(child))).ok


# Beta declines an offer a day after it, at the instant two injects are due.
CUT = (
    two_parties("fork-cut", "A fork among an instant's injects", beta_policy="decliner")
    + DECLINER
    + "injects:\n"
    + offer_inject("1h")
    + """\
  - id: first
    at: 1d 1h
    send: {type: withdrawal, from: alpha, to: beta, case: case-1}
  - id: second
    at: 1d 1h
    send: {type: withdrawal, from: alpha, to: beta, case: case-2}
"""
)


async def test_a_fork_among_an_instants_injects_sends_their_rest_before_the_parties_act(
    tmp_path: Path,
) -> None:
    """The run sent both injects due at 1d 1h before beta's reply due then; so does a fork
    after the first. Before, the fork's first round heard beta first: its reply went
    between the two injects."""
    parent = tmp_path / "parent.db"
    await run_exercise(
        parse_scenario(CUT, "tests/runtime/fork-cut.yaml"),
        RunOptions(broker="mosquitto", log=str(parent)),
    )
    expected = _without_generation(await _lines(parent))
    at_instant = [
        e["type"].removeprefix("coop.msg.")
        for e in expected
        if e["time"] == expected[2]["time"] and e["type"].startswith("coop.msg.")
    ]
    assert at_instant == [
        "withdrawal",
        "withdrawal",
        "offer_declined",
    ]
    child = tmp_path / "fork.db"
    # After the first inject of that instant.
    await fork(str(parent), 3, str(child), broker="mosquitto")
    assert _without_generation(await _lines(child)) == expected


# Alpha withdraws its request two hours after it, at the instant beta's acknowledgement is due.
CROSSING = (
    two_parties("fork-crossing", "A withdrawal crossing a reply", beta_policy="acknowledger")
    + """\
policies:
  acknowledger:
    on:
      written_request:
        - reply: acknowledgement
          after: 2h
          then:
            - reply: acceptance
              after: 1d
injects:
  - id: request
    at: 1h
    send:
      type: written_request
      from: alpha
      to: beta
      case: case-1
      fields:
        area: public_order
        essence: Crowd safety at the final.
        purpose: Align stewarding rules.
        justification: Both states host supporters.
        assistance_sought: Copies of the crowd-safety regulations.
    then:
      - reply: withdrawal
        after: 2h
"""
)


async def test_a_fork_between_a_withdrawal_and_a_reply_it_crossed_goes_on_as_its_parent(
    tmp_path: Path,
) -> None:
    """Beta's acknowledgement due at the instant of the withdrawal crosses it, in the run and
    in a fork cut between the two. Before, the fork's beta saw the withdrawal first and
    dropped the acknowledgement the run had recorded with it."""
    parent = tmp_path / "parent.db"
    await run_exercise(
        parse_scenario(CROSSING, "tests/runtime/fork-crossing.yaml"),
        RunOptions(broker="mosquitto", log=str(parent)),
    )
    expected = _without_generation(await _lines(parent))
    messages = [e for e in expected if e["type"].startswith("coop.msg.")]
    assert [(e["type"].removeprefix("coop.msg."), e["time"]) for e in messages[1:]] == [
        ("withdrawal", messages[1]["time"]),
        ("acknowledgement", messages[1]["time"]),
    ]
    child = tmp_path / "fork.db"
    # After the withdrawal, before the acknowledgement.
    await fork(str(parent), expected.index(messages[1]) + 1, str(child), broker="mosquitto")
    assert _without_generation(await _lines(child)) == expected
