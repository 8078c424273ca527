"""`simulator load`: bounded runs through the real umpire and log, reconciled against the log."""

import asyncio
import json
import os
import re
import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.brokers import Broker, MosquittoBroker
from simulator.cli import app
from simulator.eventlog import verify
from simulator.load import LoadOptions, run_load
from simulator.load.page import LATENCY_LINE_IDS, RATE_LINE_ID
from tests.eventlog.conftest import pg_schema, pg_url

__all__ = ["pg_schema", "pg_url"]  # the PostgreSQL fixtures, shared with the event log tests

REQUIRED = ("committed_events_per_s", "lost", "duplicated", "latency_ms", "case_latency_ms")


def test_a_short_load_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """A bounded run on the embedded broker: every submission in the log once, all fields there."""
    out, page, log = tmp_path / "load.json", tmp_path / "load.html", tmp_path / "load.db"
    result = CliRunner().invoke(
        app,
        [
            "load",
            "--parties", "4",
            "--rate", "15",
            "--duration", "2",
            "--processes", "2",
            "--log", str(log),
            "--json", str(out),
            "--html", str(page),
            "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    for key in REQUIRED:
        assert key in data, key
    for key in ("p50", "p90", "p99", "p99_9", "max"):
        assert key in data["latency_ms"]
        assert key in data["case_latency_ms"]
    assert data["mode"] == "batched via gateways"
    assert data["lost"] == 0
    assert data["duplicated"] == 0
    assert data["rejected"] == 0
    assert data["undelivered"] == 0
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 30
    # Every submission is one event; the exercise's start and end are the other two.
    assert data["submitted"] == data["committed_messages"] == data["events"] - 2
    assert data["latency_ms"]["count"] == data["submitted"]
    assert data["latency_ms"]["p50"] > 0
    assert data["latency_ms"]["max"] >= data["latency_ms"]["p99"] >= data["latency_ms"]["p50"]
    assert data["committed_events_per_s"] > 0
    assert "lost 0, duplicated 0" in result.output
    # The CPU each role used over the run, in cores and per event, and what ran out first.
    use = data["cpu_use"]
    assert set(use["cores_busy"]) == set(data["cpu_ms_per_event"]) >= {"umpire", "generators"}
    assert use["cores"] == len(os.sched_getaffinity(0))
    assert use["cores_busy"]["umpire"] > 0
    assert use["cores_busy_here"] == pytest.approx(sum(use["cores_busy"].values()), abs=0.02)
    assert f"ran out of CPU first: {use['why']}" in " ".join(result.output.split())
    # The over-time chart draws a point per second on both axes: latency on the left,
    # committed events per second (the live progress) on the right.
    chart = page.read_text(encoding="utf-8")
    assert data["progress"]
    assert all(p["events_per_s"] >= 0 for p in data["progress"])
    for gid, points in (
        (LATENCY_LINE_IDS["p50"], data["latency_over_time"]),
        (RATE_LINE_ID, data["progress"]),
    ):
        line = re.search(rf'<g id="{gid}">\s*<path d="([^"]*)"', chart)
        assert line is not None, gid
        assert len(re.findall(r"[ML] [\d.]+ [\d.]+", line[1])) == len(points), gid
    assert str(log) in chart  # kept with --log, so the page names it
    assert "ran out of CPU first" in chart
    report = asyncio.run(verify(log))
    assert report.ok, report.problem


def test_a_load_run_logs_to_postgresql_and_reconciles_through_the_store(
    pg_url: str, pg_schema: str
) -> None:
    """The log may be PostgreSQL: reconciled through the store, nothing lost or duplicated."""
    location = f"{pg_url}?schema={pg_schema}"
    report = asyncio.run(
        run_load(LoadOptions(parties=4, rate=15, duration_s=2, processes=1, log=location))
    )
    assert report.log == location
    assert report.lost == 0
    assert report.duplicated == 0
    assert report.cases_completed == report.cases_scheduled == 30
    assert report.submitted == report.committed_messages == report.events - 2


@pytest.mark.parametrize(
    ("flag", "mode"),
    [
        ("--per-party", "batched per party"),
        ("--one-per-message", "one-per-message"),
    ],
)
def test_the_other_modes_lose_and_duplicate_nothing(tmp_path: Path, flag: str, mode: str) -> None:
    """A connection per party, batched or one publish per submission: reconciled the same."""
    out = tmp_path / "load.json"
    result = CliRunner().invoke(
        app,
        ["load", "--parties", "4", "--rate", "10", "--duration", "2", flag,
         "--json", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["mode"] == mode
    assert data["log_kept"] is False  # no --log: a temporary file, and the figures say so
    assert (data["lost"], data["duplicated"], data["rejected"], data["undelivered"]) == (0, 0, 0, 0)
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 20
    assert data["submitted"] == data["committed_messages"] == data["latency_ms"]["count"]


def test_bad_load_options_are_refused_with_exit_2(tmp_path: Path) -> None:
    """An odd number of parties is refused before anything starts."""
    result = CliRunner().invoke(app, ["load", "--parties", "3", "--duration", "1"])
    assert result.exit_code == 2
    assert "--parties" in result.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--rate", "nan"], "--rate must be a positive number"),
        (["--rate", "inf"], "--rate must be a positive number"),
        (["--rate", "0.2", "--duration", "2"], "starts no case"),
        (["--drain", "-5"], "--drain must be 0 or more"),
        (["--drain", "nan"], "--drain must be 0 or more"),
        (["--case-deadline", "nan"], "--case-deadline must be a positive number"),
        (["--parties", "100000"], "--parties must be at most 10,000"),
        (["--p99-bound", "nan", "--find-max"], "--p99-bound must be a positive number"),
        (["--metrics-port", "70000"], "--metrics-port must be 1..65535"),
        (["--metrics-port", "-1"], "--metrics-port must be 1..65535"),
        (["--find-max", "--metrics-port", "19999"], "leave it out of --find-max"),
        (["--json", "{tmp}"], "is a directory"),
        (["--html", "{tmp}"], "is a directory"),
        (["--log", "{tmp}"], "a directory, not a log file"),
    ],
)
def test_options_no_run_could_use_are_refused_before_it_starts(
    tmp_path: Path, args: list[str], said: str
) -> None:
    """Each had been a traceback (NaN reached the generators as null, a directory as --html
    failed after the whole run, --log a directory in the writer's lock), a run reporting
    2e+09 events a second for no case, or accepted (a negative drain, 100,000 parties)."""
    given = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(
        app, ["load", "--duration", "1", "-q", *given], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert "Traceback" not in result.output


def test_a_mix_file_that_is_not_text_is_one_message(tmp_path: Path) -> None:
    """Random bytes as --mix had been a UnicodeDecodeError traceback."""
    mix = tmp_path / "mix.yaml"
    mix.write_bytes(bytes(range(128, 256)))
    result = CliRunner().invoke(app, ["load", "--mix", str(mix)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "not text (byte 0 is not UTF-8)" in result.output


async def test_mosquitto_killed_and_restarted_mid_run_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL Mosquitto mid-run, restart it on its port: the run ends with 0 lost, 0 duplicated."""
    killed: list[int] = []

    async def kill_and_restart(broker: Broker) -> None:
        assert isinstance(broker, MosquittoBroker)
        await asyncio.sleep(1.0)
        pid, port = broker.pid, broker.address.port
        assert pid is not None
        await broker.kill()
        killed.append(pid)
        await asyncio.sleep(0.5)
        await broker.start()
        assert broker.pid not in (None, pid)
        assert broker.address.port == port

    options = LoadOptions(
        parties=4,
        rate=40,
        duration_s=4,
        broker="mosquitto",
        workdir=tmp_path,
        drain_s=60,
        resend_after_s=1.0,
    )
    report = await run_load(options, during=kill_and_restart)
    assert killed, "the broker was never killed"
    data = report.as_json()
    assert data["lost"] == 0
    assert data["duplicated"] == 0
    assert data["undelivered"] == 0
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == 160
    assert data["submitted"] == data["committed_messages"]
    assert os.path.exists(report.log)
    assert (await verify(report.log)).ok
    print(  # the recovery figures, for whoever reads the test log
        {k: data[k] for k in ("resends", "catch_ups", "deliveries_duplicated", "latency_ms")}
    )


async def test_a_broker_killed_for_good_is_a_failure_with_figures_not_a_traceback(
    tmp_path: Path,
) -> None:
    """SIGKILL Mosquitto mid-run, no restart: the run reports why it stopped, with its figures."""

    async def kill(broker: Broker) -> None:
        assert isinstance(broker, MosquittoBroker)
        await asyncio.sleep(1.0)
        await broker.kill()

    options = LoadOptions(
        parties=4, rate=40, duration_s=3, broker="mosquitto", workdir=tmp_path, drain_s=3
    )
    report = await run_load(options, during=kill)
    data = report.as_json()
    assert data["ok"] is False
    assert "the broker (mosquitto) stopped answering and did not come back" in data["failure"]
    # What the log holds is reconciled all the same: the first second's cases are in it.
    assert data["committed_messages"] > 0
    assert (await verify(report.log)).ok


def test_an_unreachable_broker_exits_2_with_its_json_written(tmp_path: Path) -> None:
    """The figures file says why there are no figures; the exit code is "could not run"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    figures = tmp_path / "figures.json"
    result = CliRunner().invoke(
        app,
        ["load", "--broker", f"mqtt://u:p@127.0.0.1:{port}", "--duration", "1", "--json",
         str(figures), "-q", "--connect-timeout", "2"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    data = json.loads(figures.read_text())
    assert data["ok"] is False
    assert data["verdict"] == "failed"  # README: exit codes, `verdict` in the JSON
    assert f"127.0.0.1:{port} unavailable" in data["failure"]
    assert data["broker"] == f"mqtt://u@127.0.0.1:{port}"  # the password stays out


async def test_a_secure_load_run_speaks_tls_only_and_loses_nothing(tmp_path: Path) -> None:
    """`--secure` on Mosquitto: the generators and the umpire reach a TLS-only broker."""
    seen: list[tuple[bool, bool]] = []

    async def during(broker: Broker) -> None:
        seen.append((broker.address.tls, broker.address.ca_file is not None))

    report = await run_load(
        LoadOptions(
            parties=4,
            rate=10,
            duration_s=1.5,
            broker="mosquitto",
            processes=1,
            log=str(tmp_path / "secure.db"),
            workdir=tmp_path / "work",
            secure=True,
        ),
        during=during,
    )
    assert seen == [(True, True)]
    data = report.as_json()
    assert (data["lost"], data["duplicated"], data["rejected"]) == (0, 0, 0)
    assert data["cases"]["completed"] == data["cases"]["scheduled"] > 0
    config = (tmp_path / "work" / "broker" / "mosquitto.conf").read_text()
    # One listener, and it has a certificate: no plain port to fall back to.
    settings = [line.split()[0] for line in config.splitlines() if line and line[0] != "#"]
    assert settings.count("listener") == 1
    assert "certfile" in settings


@pytest.mark.parametrize(
    ("rate", "evidence"),
    [
        # One case: one submission in flight at a time, so nothing can overtake the lost
        # request; only the silence probe finds it.
        pytest.param(1, "silence", id="lost-alone-found-by-the-silence-probe"),
        # Twenty cases: the parties' later requests are committed, overtaking it.
        pytest.param(20, "overtaken", id="lost-among-others-found-overtaken"),
    ],
)
async def test_a_submission_lost_after_the_broker_took_it_is_resent(
    tmp_path: Path, rate: float, evidence: str
) -> None:
    """The generator's first publish vanishes without a failure or a dropped connection
    (tests/load/lossy_worker.py): the outbox resends it on evidence, and nothing is lost."""
    command = f"{sys.executable} -m tests.load.lossy_worker 1"
    options = LoadOptions(
        parties=2,
        rate=rate,
        duration_s=1,
        broker="mosquitto",
        processes=1,
        workdir=tmp_path,
        drain_s=60,
        resend_after_s=1.0,
        worker_commands=(command,),
    )
    report = await run_load(options)
    data = report.as_json()
    assert data["lost"] == 0
    assert data["duplicated"] == 0
    assert data["undelivered"] == 0
    assert data["cases"]["completed"] == data["cases"]["scheduled"] == rate
    assert data["submitted"] == data["committed_messages"]
    # The lost request had to be sent again (the transport knew of no loss to repeat it).
    assert data["resends"] >= 1, evidence
