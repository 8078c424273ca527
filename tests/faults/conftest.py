"""The calm run every drill is reconciled against, made once per test session."""

import asyncio
import os
from typing import Any
from unittest import mock

import pytest

from simulator.run.exercise import RunOptions, run_exercise
from tests.faults.harness import example
from tests.runtime.test_exercise import exported


@pytest.fixture(scope="session")
def calm(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The example scenario's log from an undisturbed run on the embedded broker."""
    where = tmp_path_factory.mktemp("calm")
    log = where / "calm.db"

    async def run() -> list[dict[str, Any]]:
        await run_exercise(example(), RunOptions(log=str(log)))
        return await exported(log)

    # Session-wide, so the per-test key-dir fixtures do not apply yet: keep keys private here.
    with mock.patch.dict(os.environ, {"SIMULATOR_KEY_DIR": str(where / "keys")}):
        return asyncio.run(run())
