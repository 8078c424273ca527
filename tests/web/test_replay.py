"""Serving a log replays it into the control view, paced, with the report at the end."""

import asyncio
from pathlib import Path

import httpx
import pytest

from simulator.projections.summary import RunSummary
from simulator.run.exercise import RunOptions, run_exercise
from simulator.scenario import load_scenario
from simulator.web.serve import ServeOptions, serve_log

SCENARIOS = Path(__file__).parents[2] / "scenarios"


@pytest.fixture
async def recorded(tmp_path: Path) -> tuple[Path, RunSummary]:
    log = tmp_path / "recorded.db"
    scenario = load_scenario(SCENARIOS / "lost-cargo.yaml")
    outcome = await run_exercise(scenario, RunOptions(log=str(log), workdir=tmp_path / "broker"))
    return log, outcome.summary


async def test_serving_a_log_replays_it_with_pause_jump_and_speed(
    recorded: tuple[Path, RunSummary], tmp_path: Path
) -> None:
    """Paused, a replay shows its start; jump, the next moment; at speed, the end and the report."""
    log, summary = recorded
    links: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
    stopping = asyncio.Event()
    task = asyncio.create_task(
        serve_log(
            str(log),
            ServeOptions(port=0, report_dir=tmp_path / "report"),
            speed=1.0,
            announce=links.set_result,
            stopping=stopping,
        )
    )
    try:
        found = await asyncio.wait_for(links, 30)
        assert set(found) == {"control"}
        token = {"token": found["control"].split("token=", 1)[1]}
        base = found["control"].split("/control", 1)[0]
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:

            async def state() -> dict[str, object]:
                response = await client.get("/control/state", params=token)
                data: dict[str, object] = response.json()
                return data

            async def command(**body: object) -> int:
                response = await client.post("/control/command", params=token, json=body)
                return response.status_code

            assert await command(command="pause") == 200
            assert await command(command="pause") == 409  # as a live run answers
            first = await state()
            assert first["mode"] == "replay"
            assert first["clock"]["paused"]  # type: ignore[index]
            # One simulated second per second: the start, and nothing a minute later.
            assert first["head"] == 1
            assert await command(command="jump") == 200
            jumped = await state()
            assert isinstance(jumped["head"], int)
            assert jumped["head"] > 1
            assert jumped["clock"]["time"] > first["clock"]["time"]  # type: ignore[index]
            assert await command(command="note", text="no") == 409
            assert await command(command="speed", speed=1_000_000) == 200
            assert await command(command="resume") == 200
            loop = asyncio.get_running_loop()
            give_up = loop.time() + 60
            while not (done := await state())["report"]:
                assert loop.time() < give_up, done
                await asyncio.sleep(0.2)
            assert done["ended"] == summary.ended_because
            assert done["head"] == summary.events
            violations = done["violations"]
            assert isinstance(violations, list)
            assert len(violations) == sum(summary.violations_by_rule.values())
            report = await client.get(str(done["report"]), params=token)
            assert report.status_code == 200
            assert "lost" in report.text.lower()
    finally:
        stopping.set()
        await asyncio.wait_for(task, 30)
    # The report went where it was asked to, and nothing beside the log.
    assert (tmp_path / "report" / "report.html").is_file()
    assert not [p for p in log.parent.iterdir() if p.name.endswith(".report")]
