"""`simulator report LOG -o DIR`, run as a user would."""

import contextlib
import inspect
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app, report
from simulator.report import DEFAULT_CHARTED_CASES


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stderr


def test_report_command_writes_the_three_files(drill_log: Path, tmp_path: Path) -> None:
    """The command writes report.html, report.md and report.json, and the letters beside them."""
    out = tmp_path / "out"
    code, err = _invoke("report", str(drill_log), "-o", str(out), "--charts", "2")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "letters",
        "report.html",
        "report.json",
        "report.md",
    ]
    # The drill's written messages (all but its oral request), and their index.
    assert len(list((out / "letters").glob("0*.html"))) == 7
    assert (out / "letters" / "index.html").is_file()
    assert "wrote" in err
    assert (out / "report.html").read_text(encoding="utf-8").count('<figure id="case-') == 2


def test_report_of_a_missing_log_fails_with_one_message(tmp_path: Path) -> None:
    """A path that holds no log exits with code 2 and says so; nothing is written."""
    code, err = _invoke("report", str(tmp_path / "nope.db"), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "nope.db" in err
    assert not (tmp_path / "out").exists()


def test_report_into_a_file_fails_with_one_message(drill_log: Path, tmp_path: Path) -> None:
    """An output path that is a file exits with code 2 naming it."""
    blocker = tmp_path / "taken"
    blocker.write_text("x", encoding="utf-8")
    code, err = _invoke("report", str(drill_log), "-o", str(blocker))
    assert code == 2
    assert "taken" in err


def test_report_is_identical_across_processes(drill_log: Path, tmp_path: Path) -> None:
    """Two runs of the command with different hash seeds write the same bytes."""
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / f"out-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-m", "simulator", "report", str(drill_log), "-o", str(out)],
            check=True,
            env=env,
            capture_output=True,
        )
        outputs.append(
            {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        )
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 3 + 7 + 1  # the report, the letters and their index


def test_command_default_matches_the_report_default() -> None:
    """The command's --charts default is the report package's DEFAULT_CHARTED_CASES."""
    assert inspect.signature(report).parameters["charts"].default == DEFAULT_CHARTED_CASES


@pytest.mark.parametrize("apart", [False, True], ids=["inline", "in-a-process-of-its-own"])
def test_the_report_says_whether_its_log_verifies(
    drill_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apart: bool
) -> None:
    """A report is of the log as it is now: it says whether that is what its writer signed.

    A long log is checked in a process of its own (`CHECK_APART_FROM`); here, any log.
    """
    if apart:
        # The module, not the Typer app that `simulator.cli.app` names in the package.
        monkeypatch.setattr(sys.modules["simulator.cli.app"], "CHECK_APART_FROM", 0)
    code, err = _invoke("report", str(drill_log), "-o", str(tmp_path / "sound"))
    sound = json.loads((tmp_path / "sound" / "report.json").read_text(encoding="utf-8"))
    with contextlib.closing(sqlite3.connect(drill_log)) as conn, conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('seed', '99')")
    edited_code, edited_err = _invoke("report", str(drill_log), "-o", str(tmp_path / "edited"))
    edited = json.loads((tmp_path / "edited" / "report.json").read_text(encoding="utf-8"))
    markdown = (tmp_path / "edited" / "report.md").read_text(encoding="utf-8")
    html = (tmp_path / "edited" / "report.html").read_text(encoding="utf-8")

    assert code == 0, err
    assert sound["integrity"]["sound"] is True
    assert (sound["integrity"]["closed"], sound["integrity"]["metadata_vouched"]) == (True, True)
    assert sound["integrity"]["checked"] == sound["summary"]["events"]
    assert "warning" not in err
    # Still written (it is what the log says), and saying loudly that the log was edited.
    assert edited_code == 0, edited_err
    assert edited["integrity"]["sound"] is False
    assert "the metadata key 'seed' differs" in edited["integrity"]["problem"]
    assert "**This log does not verify.**" in markdown
    assert "DOES NOT VERIFY" in markdown
    assert "This log does not verify." in html
    assert "warning: the log does not verify" in " ".join(edited_err.split())
