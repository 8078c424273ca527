"""`simulator log show | verify | export | import`, run as a user would."""

import asyncio
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from tests.logs import DRILL, write_log


@pytest.fixture
def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIMULATOR_KEY_DIR", str(tmp_path / "keys"))
    path = tmp_path / "drill.db"
    asyncio.run(write_log(path))
    return path


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_show_lists_events_with_their_findings(drill: Path) -> None:
    """`log show` prints every event with its type, parties and violations."""
    code, out, _ = _invoke("log", "show", str(drill))
    assert code == 0
    assert "9 of 9 events" in out
    assert "refusal-without-reasons" in out
    assert "beta → alpha" in out


def test_show_filters_by_case_and_type(drill: Path) -> None:
    """--case and --type narrow the listing; --json gives one CloudEvent per line."""
    code, out, _ = _invoke("log", "show", str(drill), "--case", "case-3", "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [e["subject"] for e in lines] == ["case-3"] * 3
    assert all(e["specversion"] == "1.0" for e in lines)
    code, out, _ = _invoke("log", "show", str(drill), "--type", "acceptance", "--json")
    assert [json.loads(line)["type"] for line in out.splitlines()] == ["coop.msg.acceptance"] * 2


def test_show_at_a_position_gives_case_states_then(drill: Path) -> None:
    """--at POS shows each case's state as of that position (time travel)."""
    code, out, _ = _invoke("log", "show", str(drill), "--at", "3")
    assert code == 0
    assert "cases as of position 3" in out
    assert "under consideration" in out
    assert "refused" not in out.split("cases as of position 3")[1]


def test_verify_passes_a_sound_log(drill: Path) -> None:
    """A log as written verifies, exit 0."""
    code, out, _ = _invoke("log", "verify", str(drill))
    assert code == 0, out
    assert f"{len(DRILL) + 1} events" in out


def test_verify_names_the_position_of_a_changed_byte(drill: Path) -> None:
    """Editing one stored event makes verify exit 1 and name its position."""
    with sqlite3.connect(drill) as db:
        body = db.execute("SELECT body FROM events WHERE position = 4").fetchone()[0]
        db.execute(
            "UPDATE events SET body = ? WHERE position = 4",
            (body.replace("beta", "bets", 1),),
        )
    code, out, _ = _invoke("log", "verify", str(drill), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["first_bad_position"] == 4
    assert report["ok"] is False


def test_export_import_round_trip_is_exact(drill: Path, tmp_path: Path) -> None:
    """Export, import into a new log and export again give identical bytes."""
    first = tmp_path / "a.jsonl"
    assert _invoke("log", "export", str(drill), "-o", str(first))[0] == 0
    copy = tmp_path / "copy.db"
    assert _invoke("log", "import", str(first), "-o", str(copy))[0] == 0
    code, out, _ = _invoke("log", "export", str(copy))
    assert code == 0
    assert out == first.read_text(encoding="utf-8")


def test_import_never_overwrites(drill: Path, tmp_path: Path) -> None:
    """Importing onto an existing file is refused and the file is left as it was."""
    exported = tmp_path / "a.jsonl"
    _invoke("log", "export", str(drill), "-o", str(exported))
    before = hashlib.sha256(drill.read_bytes()).hexdigest()
    code, _, err = _invoke("log", "import", str(exported), "-o", str(drill))
    assert code == 2
    assert "already exists" in err
    assert hashlib.sha256(drill.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("command", ["show", "verify", "export"])
def test_foreign_and_corrupt_files_get_a_clear_error(tmp_path: Path, command: str) -> None:
    """Random bytes or someone else's SQLite database: a clear error, the file untouched."""
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 8)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    for path in (junk, foreign):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        code, _, err = _invoke("log", command, str(path))
        assert code == 2, (command, path, err)
        assert str(path) in err.replace("\n", "")
        assert "not an event log" in err.replace("\n", " ")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
