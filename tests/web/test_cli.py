"""`simulator serve` refuses bad input with one clear message and exit code 2."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app


def serve(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["serve", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_a_missing_scenario_is_named(tmp_path: Path) -> None:
    """A scenario path that does not exist is named in the error."""
    code, output = serve(str(tmp_path / "absent.yaml"), "--port", "0")
    assert code == 2
    assert "absent.yaml: no such file" in output


def test_a_log_is_not_run_in_training(tmp_path: Path) -> None:
    """Options that only make sense for a live run are refused for a log."""
    code, output = serve(str(tmp_path / "run.db"), "--training")
    assert code == 2
    assert "for a scenario, not a log" in output


def test_a_file_that_is_no_log_is_refused(tmp_path: Path) -> None:
    """Something that is neither a scenario nor a log gets a clear error, and stays as it was."""
    target = tmp_path / "notes.db"
    target.write_text("not a database")
    code, output = serve(str(target), "--port", "0")
    assert code == 2
    assert "notes.db" in output
    assert target.read_text() == "not a database"


@pytest.mark.parametrize("speed", ["0", "-5", "nan", "inf", "1e400", "1e-300", "2e7"])
def test_a_speed_no_clock_can_run_at_is_refused(speed: str) -> None:
    """Zero would stop time for good, NaN and infinity had crashed the clock with a
    traceback, a speed below x0.001 freezes the run: refused before anything starts."""
    code, output = serve("scenarios/human/refusal-desk.yaml", "--speed", speed)
    assert code == 2
    assert "--speed must be from 0.001 to 1e+07 simulated seconds a real second" in output
    assert "Traceback" not in output
