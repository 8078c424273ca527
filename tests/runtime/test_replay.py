"""Replay: re-publishing a log, checking it against today's code, and forking it."""

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from simulator.brokers import start_broker, transport_for
from simulator.context import fresh_rng, wall_now
from simulator.errors import InputError
from simulator.eventlog import NewEvent, to_json_line
from simulator.logfiles import open_log
from simulator.messaging.topics import Topics
from simulator.run.exercise import RunOptions, run_exercise
from simulator.run.replay import (
    ReplayProgress,
    check,
    fork,
    read_range,
    recorded_run,
    republish,
    resume,
    stream_range,
)
from simulator.scenario import Scenario, load_scenario
from simulator.transport import SessionSettings
from tests.eventlog.conftest import pg_schema, pg_url

__all__ = ["pg_schema", "pg_url"]

SCENARIOS = Path(__file__).parents[2] / "scenarios"
EXAMPLE = SCENARIOS / "example.yaml"
GOLDEN = Path(__file__).parents[1] / "golden"


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(EXAMPLE)


async def _lines(path: Path) -> list[str]:
    async with open_log(path, read_only=True) as store:
        return [to_json_line(e) async for e in store.read(upgrade=False)]


def _without_generation(lines: list[str]) -> list[dict[str, Any]]:
    """Events minus wall-clock fields, with fork-generation ids (`x.g1.3`) made plain.

    Signature values differ with the ids they sign, so they are masked too.
    """
    out = []
    for line in lines:
        event = json.loads(line)
        for key in ("wallclock", "hash", "prevhash", "id", "causationid"):
            event.pop(key, None)
        if event["type"] == "coop.exercise.ended":
            event["data"].pop("rounds")
        text = json.dumps(event, sort_keys=True)
        # A signature covers the message id, which carries the generation.
        text = re.sub(r'"value": "[A-Za-z0-9+/=]{40,}"', '"value": "signature"', text)
        text = re.sub(r"\.g\d+\.", ".", text)
        out.append(json.loads(text))
    return out


async def test_check_passes_on_an_unchanged_run(scenario: Scenario, tmp_path: Path) -> None:
    """Re-running the recorded scenario and seed with the same code reproduces every event."""
    log = tmp_path / "run.db"
    await run_exercise(scenario, RunOptions(log=str(log)))
    result = await check(str(log))
    assert result.ok, result.what
    assert result.recorded == result.rerun > 20


async def test_check_of_a_log_from_before_rounds_were_held_only_when_due_names_that(
    tmp_path: Path,
) -> None:
    """A log of the older round protocol differs in its end event's round count alone: said so."""
    # Copied first: opening a SQLite file, even to read it, writes beside it.
    for suffix in ("", ".checkpoints"):
        shutil.copy(GOLDEN / f"rounds-v1-example.db{suffix}", tmp_path / f"old.db{suffix}")
    result = await check(str(tmp_path / "old.db"))
    assert not result.ok
    assert result.first_difference == result.recorded == result.rerun
    assert result.what.startswith("only the number of rounds differs (recorded 53, now ")
    assert "issue 16" in result.what
    assert "every event before it is the same" in result.what


async def _interrupted(source: Path, target: Path, *, at_least: int) -> int:
    """What a run killed after about `at_least` events leaves: its first events, its metadata.

    Cut where simulated time moves on, as a killed run's log is: each round is one append.
    """
    async with open_log(source, read_only=True) as whole:
        events = [e async for e in whole.read()]
        metadata = await whole.metadata()
    keep = next(n for n in range(at_least, len(events)) if events[n].time != events[n - 1].time)
    async with open_log(target, create=True, now=wall_now) as store:
        for key, value in metadata.items():
            if not key.startswith("eventlog."):
                await store.set_metadata(key, value)
        await store.append([NewEvent.from_event(e) for e in events[:keep]])
    return keep


async def test_check_of_a_log_whose_run_has_not_ended_passes_on_what_it_holds(
    scenario: Scenario, tmp_path: Path
) -> None:
    """A log with no end yet (its run still writing it, or killed): every event it holds is
    the rerun's, so it passes, saying the log has no end and how far the rerun goes.
    Before: "diverges at position N+1: the rerun goes on", exit 1."""
    whole = tmp_path / "whole.db"
    await run_exercise(scenario, RunOptions(log=str(whole)))
    unfinished = tmp_path / "unfinished.db"
    kept = await _interrupted(whole, unfinished, at_least=15)
    result = await check(str(unfinished))
    assert result.ok, result.what
    assert (result.recorded, result.rerun) == (kept, len(await _lines(whole)))
    assert result.what.startswith("the log has no end yet")
    assert f"every one of its {kept} events is the same" in result.what


@pytest.mark.parametrize("forked", [False, True], ids=["run", "fork"])
async def test_check_passes_on_a_resumed_run_and_says_why_its_rounds_differ(
    scenario: Scenario, tmp_path: Path, forked: bool
) -> None:
    """A resumed log differs from its rerun in its count of rounds alone: a note, not a failure."""
    calm = tmp_path / "calm.db"
    await run_exercise(scenario, RunOptions(log=str(calm)))
    if forked:
        await fork(str(calm), 12, str(tmp_path / "fork.db"))
        calm = tmp_path / "fork.db"
    killed = tmp_path / "killed.db"
    kept = await _interrupted(calm, killed, at_least=20)
    await resume(str(killed))
    result = await check(str(killed))
    assert result.ok, result.what
    assert result.recorded == result.rerun == len(await _lines(calm))
    assert result.what.startswith(
        f"the count of rounds differs only because the run was resumed (at position {kept})"
    )
    # A log resumed before resumptions were recorded: a difference, named for what it is.
    async with open_log(killed, now=wall_now) as store:
        await store.set_metadata("resumed_at", "")
    result = await check(str(killed))
    assert not result.ok
    assert result.first_difference == result.recorded
    assert "fewer rounds than its rerun when its run was resumed" in result.what
    assert "issue 16" not in result.what


async def test_check_names_the_first_position_where_a_changed_policy_diverges(
    scenario: Scenario, tmp_path: Path
) -> None:
    """With a policy changed (as new code would), --check fails at the first differing event."""
    log = tmp_path / "run.db"
    await run_exercise(scenario, RunOptions(log=str(log)))
    changed = scenario.model_dump(by_alias=True, mode="json")
    for policy in changed["policies"].values():
        for responses in policy["on"].values():
            for response in responses:
                if response["reply"] != "silence":
                    response["after"] = "1h"
    async with open_log(log, now=wall_now) as store:
        await store.set_metadata("scenario", json.dumps(changed))
    result = await check(str(log))
    assert not result.ok
    events = await read_range(str(log))
    assert result.first_difference is not None
    assert 1 < result.first_difference <= len(events)
    assert "time" in result.what


async def test_fork_shares_its_first_events_byte_for_byte(
    scenario: Scenario, tmp_path: Path
) -> None:
    """A fork at N keeps the parent's first N events exactly and records where it came from."""
    parent = tmp_path / "parent.db"
    await run_exercise(scenario, RunOptions(log=str(parent)))
    child = tmp_path / "child.db"
    outcome = await fork(str(parent), 12, str(child))
    assert outcome.summary.events > 12
    parent_lines, child_lines = await _lines(parent), await _lines(child)
    assert child_lines[:12] == parent_lines[:12]
    async with open_log(child, read_only=True) as store:
        assert await store.get_metadata("parent") == str(parent)
        assert await store.get_metadata("fork_position") == "12"
        assert await store.get_metadata("generation") == "1"
    # Same scenario and seed: the continuation is the parent's, under new-generation ids.
    assert _without_generation(child_lines) == _without_generation(parent_lines)
    assert (await check(str(child))).ok


async def test_fork_with_other_policies_goes_another_way(
    scenario: Scenario, tmp_path: Path
) -> None:
    """A what-if: the requested party refuses everything from the fork on."""
    parent = tmp_path / "parent.db"
    await run_exercise(scenario, RunOptions(log=str(parent)))
    data = scenario.model_dump(by_alias=True, mode="json")
    refuser = {
        "on": {
            kind: [{"reply": "refusal", "after": "2h", "fields": {"reasons": "Not now."}}]
            for kind in ("written_request", "written_confirmation")
        }
    }
    for party in data["parties"]:
        if party["id"] == "southmere":
            party["policy"] = refuser
    what_if = Scenario.model_validate(data)
    child = tmp_path / "child.db"
    await fork(str(parent), 12, str(child), scenario=what_if)
    events = await read_range(str(child))
    later = [e for e in events[12:] if e.type == "coop.msg.refusal"]
    assert later, "the new policy never refused"
    assert all(e.sender == "southmere" for e in later)
    assert (await check(str(child))).ok
    stored, _, _ = await recorded_run(str(child))
    assert stored.policy_of("southmere") is not None


async def test_a_secure_forks_log_in_postgresql_can_be_checked_and_forked_again(
    scenario: Scenario, tmp_path: Path, pg_url: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork of a `--secure` run into a PostgreSQL schema keeps a copy of the signing secret
    where a secure run in that schema keeps its own, as a fork into a file does: `replay
    --check` reproduces it and it forks again. Before: its secret was missing, exit 2."""
    monkeypatch.chdir(tmp_path)  # where `runs/postgres-….signing` goes
    parent = tmp_path / "secure.db"
    await run_exercise(scenario, RunOptions(log=str(parent), secure=True))
    child = f"{pg_url}?schema={pg_schema}"
    await fork(str(parent), 12, child)

    result = await check(child)
    await fork(child, 14, str(tmp_path / "grandchild.db"))

    assert result.ok, result.what
    assert (await check(str(tmp_path / "grandchild.db"))).ok


async def test_fork_refuses_positions_outside_the_log(scenario: Scenario, tmp_path: Path) -> None:
    """--at beyond the log, or at its end, is a clear input error."""
    parent = tmp_path / "parent.db"
    await run_exercise(scenario, RunOptions(log=str(parent)))
    with pytest.raises(InputError, match="outside the log"):
        await fork(str(parent), 10_000, str(tmp_path / "x.db"))
    head = len(await read_range(str(parent)))
    with pytest.raises(InputError, match=f"the run ended at position {head}; fork at {head - 1}"):
        await fork(str(parent), head, str(tmp_path / "y.db"))


@pytest.mark.parametrize("streamed", [False, True], ids=["list", "streamed"])
async def test_republish_reaches_subscribers_marked_as_replay(
    scenario: Scenario, tmp_path: Path, streamed: bool
) -> None:
    """Every event of the log reaches a subscriber of the exercise tree, marked as a replay.

    Streamed: read from the log as it is published (as `simulator replay` does, so a log of
    millions of events is never held whole), with the count given for the progress.
    """
    log = tmp_path / "run.db"
    await run_exercise(scenario, RunOptions(log=str(log)))
    events = await read_range(str(log))
    topics = Topics(scenario.exercise)
    parties = [p.id for p in scenario.parties]
    async with start_broker("mosquitto", topics, parties, tmp_path / "broker") as broker:
        observer = transport_for(
            broker, "observer", SessionSettings("replay-observer"), rng=fresh_rng()
        )
        publisher = transport_for(
            broker, "umpire", SessionSettings("replay-publisher", persistent=False),
            rng=fresh_rng(),
        )  # fmt: skip
        async with observer, publisher:
            await observer.subscribe(topics.tree)
            progress: list[ReplayProgress] = []
            await republish(
                stream_range(str(log)) if streamed else events,
                publisher,
                topics,
                speed=None,
                progress=progress.append,
                total=len(events) if streamed else None,
            )
            assert progress[-1].published == progress[-1].total == len(events)
            seen: set[str] = set()
            marked = True
            async with asyncio.timeout(10):
                async for received in observer.messages():
                    payload = json.loads(received.payload)
                    if payload["kind"] == "ended":
                        break
                    marked &= payload.get("replay") is True
                    seen.update(e["id"] for e in payload["events"])
    assert seen == {e.id for e in events}
    assert marked


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
async def test_check_passes_on_every_shipped_scenario(path: Path, tmp_path: Path) -> None:
    """Every scenario in scenarios/ re-runs to exactly the log it recorded."""
    log = tmp_path / "run.db"
    await run_exercise(load_scenario(path), RunOptions(broker="mosquitto", log=str(log)))
    result = await check(str(log), broker="mosquitto")
    assert result.ok, f"{path.name} diverges at {result.first_difference}: {result.what}"
