"""`simulator serve --secure`: the console, its seats and the parties all speak TLS."""

from pathlib import Path

import pytest

from simulator.logfiles import open_log
from simulator.records import EXERCISE_STARTED
from simulator.signing import signing_secret_path
from tests.web.conftest import desk, serving
from tests.web.test_console import case_of, seat_state, send


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
async def test_a_secure_console_runs_its_seat_over_tls(tmp_path: Path, broker: str) -> None:
    async with serving(desk(), tmp_path, broker=broker, secure=True) as served:
        seat = await seat_state(served, "southmere", lambda s: case_of(s, "water-1"))
        water = case_of(seat, "water-1")
        assert water is not None
        # The simulated requester signed with its secret key; the seat sees it verified.
        assert water["steps"][0]["violations"] == []
        sent = await send(served, "southmere", kind="acknowledgement", case="water-1", values={})
        assert sent.status_code == 200, sent.text
        assert (await served.command(command="stop")).status_code == 200
        await served.until(lambda s: s["ended"], seconds=60)
    async with open_log(str(served.log), read_only=True) as store:
        assert await store.get_metadata("signing") == "secret"
        events = [e async for e in store.read(1)]
    assert [e.data["message"]["type"] for e in events if e.sender == "southmere"] == [
        "acknowledgement"
    ]
    assert signing_secret_path(str(served.log)).stat().st_mode & 0o777 == 0o600
    started = next(e for e in events if e.type == EXERCISE_STARTED)
    assert started.data["signatures"]["require_values"] is True
