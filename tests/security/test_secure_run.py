"""Signed requests and `--secure` runs, end to end over real brokers."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from simulator.errors import InputError
from simulator.logfiles import open_log
from simulator.protocol import SignatureStatus
from simulator.records import EXERCISE_STARTED, read_agreement, read_message
from simulator.run.exercise import RunOptions, run_exercise
from simulator.run.replay import check, read_range
from simulator.scenario import load_scenario
from simulator.signing import signing_secret_path
from tests.runtime.seats import SIMULATOR, played_to_the_end, until

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FORGED = SCENARIOS / "forged-request.yaml"
EXAMPLE = SCENARIOS / "example.yaml"


def _case_types(events: list[Any], case: str) -> list[str]:
    return [e.type.removeprefix("coop.msg.") for e in events if e.subject == case]


async def test_a_forged_and_an_altered_request_are_doubted_not_acted_on(tmp_path: Path) -> None:
    """forged-request.yaml: both tampered requests are answered with a request for additional
    confirmation (Art. 4.2); the forgery ends withdrawn, the confirmed one executed; no breach."""
    log = tmp_path / "forged.db"
    outcome = await run_exercise(load_scenario(FORGED), RunOptions(log=str(log)))
    events = await read_range(str(log))
    assert _case_types(events, "forged-1") == [
        "written_request",
        "confirmation_request",
        "withdrawal",
    ]
    assert _case_types(events, "altered-1") == [
        "written_request",
        "confirmation_request",
        "additional_confirmation",
        "acceptance",
        "results",
    ]
    assert _case_types(events, "genuine-1") == [
        "written_request",
        "acknowledgement",
        "acceptance",
        "results",
    ]
    assert outcome.summary.case_states == {
        "genuine-1": "completed",
        "forged-1": "withdrawn",
        "altered-1": "completed",
    }
    assert outcome.summary.violations == []
    assert all(not r.missed for r in outcome.summary.expectations)
    # Anyone holding the log can check the signatures: it records the public keys.
    started = next(e for e in events if e.type == EXERCISE_STARTED)
    agreement = read_agreement(started)
    statuses = {
        e.subject: agreement.verify_signature(read_message(e))
        for e in events
        if e.type == "coop.msg.written_request"
    }
    assert statuses == {
        "genuine-1": SignatureStatus.VALID,
        "forged-1": SignatureStatus.INVALID,
        "altered-1": SignatureStatus.INVALID,
    }


async def test_a_secure_run_signs_with_a_private_secret_and_replays_exactly(
    tmp_path: Path,
) -> None:
    """`--secure` on Mosquitto: TLS, a 0600 secret beside the log, paper signatures refused;
    `replay --check` on the embedded broker re-runs it to the same log."""
    log = tmp_path / "secure.db"
    outcome = await run_exercise(
        load_scenario(FORGED), RunOptions(log=str(log), broker="mosquitto", secure=True)
    )
    assert outcome.summary.case_states["forged-1"] == "withdrawn"
    assert outcome.summary.violations == []
    secret = signing_secret_path(str(log))
    assert secret.stat().st_mode & 0o777 == 0o600
    async with open_log(str(log), read_only=True) as store:
        assert await store.get_metadata("signing") == "secret"
    events = await read_range(str(log))
    started = next(e for e in events if e.type == EXERCISE_STARTED)
    assert started.data["signatures"]["require_values"] is True

    training = tmp_path / "training.db"
    await run_exercise(load_scenario(FORGED), RunOptions(log=str(training)))
    values = [
        [read_message(e).model_dump().get("signature") for e in await read_range(str(path))
         if e.type == "coop.msg.written_request" and e.subject == "genuine-1"]
        for path in (log, training)
    ]  # fmt: skip
    assert values[0] != values[1], "a secure run signed with the public training keys"

    result = await check(str(log), broker="embedded")
    assert result.ok, f"diverges at {result.first_difference}: {result.what}"


async def test_secure_cli_run_hands_an_external_seat_tls_and_only_its_own_keys(
    tmp_path: Path,
) -> None:
    """`simulator run --secure --external P`: the seat and control files name the CA, the seat
    holds only P's private keys; `simulator party` plays P over TLS to the end."""
    log = tmp_path / "seat.db"
    scenario = load_scenario(EXAMPLE)
    party = scenario.parties[-1].id
    seat = Path(f"{log}.party-{party}.json")
    summary = tmp_path / "summary.json"
    run = await asyncio.create_subprocess_exec(
        *SIMULATOR, "run", str(EXAMPLE), "--secure", "--log", str(log),
        "--external", party, "--json-summary", str(summary),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await until(seat.exists, 60)
        data = json.loads(seat.read_text(encoding="utf-8"))
        assert data["tls"] is True
        assert Path(data["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert list(data["signing"]["private"]) == [party]
        assert set(data["signing"]["public"]) == {p.id for p in scenario.parties}
        control = json.loads(Path(f"{log}.control.json").read_text(encoding="utf-8"))
        assert (control["tls"], control["ca_file"]) == (True, data["ca_file"])
        player = await asyncio.create_subprocess_exec(
            *SIMULATOR, "party", "--log", str(log), "--party", party,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await played_to_the_end(player, run, 180)
    finally:
        if run.returncode is None:
            run.kill()
            await run.wait()
    result = json.loads(summary.read_text(encoding="utf-8"))
    assert result["events"] > 3
    sent_by_seat = [
        e for e in await read_range(str(log))
        if e.type.startswith("coop.msg.") and e.sender == party
    ]  # fmt: skip
    assert sent_by_seat, "the external party sent nothing"


async def test_a_secure_replay_serves_tls_and_a_restricted_observer(tmp_path: Path) -> None:
    """`simulator replay LOG --secure` republishes over TLS and names the CA to trust."""
    log = tmp_path / "plain.db"
    await run_exercise(load_scenario(FORGED), RunOptions(log=str(log)))
    replay = await asyncio.create_subprocess_exec(
        *SIMULATOR, "replay", str(log), "--secure",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(replay.communicate(), 120)
    text = err.decode()
    assert replay.returncode == 0, text[-2000:]
    assert "mqtts://" in text
    assert "TLS: trust the CA in" in text
    assert "coop/forged-request/log/#" in text


async def test_checking_a_secure_log_without_its_secret_says_so(tmp_path: Path) -> None:
    """A secure log whose LOG.signing is gone cannot be re-signed: a clear error, not a diff."""
    log = tmp_path / "secure.db"
    await run_exercise(load_scenario(FORGED), RunOptions(log=str(log), secure=True))
    signing_secret_path(str(log)).unlink()
    with pytest.raises(InputError, match=r"signing secret .* is missing"):
        await check(str(log))
