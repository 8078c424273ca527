"""Fixtures of the console tests: a real exercise behind a real web server, in this process."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.run.exercise import RunOptions, RunOutcome
from simulator.run.replay import prepare_fork
from simulator.scenario import load_scenario
from simulator.scenario.model import Scenario
from simulator.web.serve import ServeOptions, serve_scenario

DESK = Path(__file__).parents[2] / "scenarios" / "human" / "refusal-desk.yaml"


@pytest.fixture(autouse=True)
def _keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))


def desk(*, humans: tuple[str, ...] = ("southmere",)) -> Scenario:
    """The desk scenario, with the given parties played by people."""
    scenario = load_scenario(DESK)
    parties = tuple(p.model_copy(update={"human": p.id in humans}) for p in scenario.parties)
    return scenario.model_copy(update={"parties": parties})


@dataclass
class Served:
    links: dict[str, str]
    client: httpx.AsyncClient
    # The run's log: a file, or a postgresql:// URL.
    log: str
    task: "asyncio.Task[RunOutcome]"

    def token(self, name: str) -> str:
        return self.links[name].split("token=", 1)[1]

    async def command(self, **body: object) -> httpx.Response:
        return await self.client.post(
            "/control/command", params={"token": self.token("control")}, json=body
        )

    async def state(self) -> dict[str, Any]:
        response = await self.client.get("/control/state", params={"token": self.token("control")})
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    async def until(
        self, predicate: Callable[[dict[str, Any]], Any], seconds: float = 20.0
    ) -> dict[str, Any]:
        """The control state once `predicate(state)` holds; fails after `seconds`."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + seconds
        while True:
            state = await self.state()
            if predicate(state):
                return state
            assert loop.time() < give_up, f"not reached within {seconds} s: {state}"
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def serving(
    scenario: Scenario,
    tmp_path: Path,
    *,
    training: bool = False,
    speed: float = 60.0,
    broker: str = "embedded",
    secure: bool = False,
    fork_from: tuple[Path, int] | None = None,
    log: str | None = None,
    partitions: int = 0,
) -> AsyncIterator[Served]:
    """The exercise served on a free port, lingering after its end until the test is done.

    `fork_from` (a log, a position): the run goes on live from that log's first events.
    `log`: where it goes (a postgresql:// URL for `partitions`), else a file in `tmp_path`.
    """
    links: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
    stopping = asyncio.Event()
    log = log or str(tmp_path / "run.db")
    run = RunOptions(
        broker=broker,
        log=log,
        clock="realtime",
        speed=speed,
        workdir=tmp_path / "broker",
        secure=secure,
        partitions=partitions,
    )
    start = None
    if fork_from is not None:
        parent, at = fork_from
        start = await prepare_fork(
            str(parent), at, str(log), scenario=scenario, options=run, live=True
        )
        run = start.options
    task = asyncio.create_task(
        serve_scenario(
            scenario,
            run,
            ServeOptions(port=0, training=training, report_dir=tmp_path / "report"),
            announce=links.set_result,
            stopping=stopping,
            fork=start,
        )
    )
    try:
        found = await asyncio.wait_for(asyncio.shield(links), 30)
    except BaseException:
        task.cancel()
        raise
    base = found["control"].split("/control", 1)[0]
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        served = Served(found, client, log, task)
        try:
            yield served
        finally:
            stopping.set()
            await asyncio.wait_for(task, 60)
