"""The same log gives the same report, byte for byte, wherever the log lies."""

import asyncio
import shutil
from pathlib import Path

from simulator.report import read_report, save_report


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_report_is_byte_identical_when_generated_twice(drill_log: Path, tmp_path: Path) -> None:
    """Two reports of one log, and of a copy of it elsewhere, have identical files."""
    copy = tmp_path / "elsewhere" / "copy.db"
    copy.parent.mkdir()
    shutil.copy(drill_log, copy)
    first = save_report(asyncio.run(read_report(drill_log)), tmp_path / "a")
    second = save_report(asyncio.run(read_report(drill_log)), tmp_path / "b")
    third = save_report(asyncio.run(read_report(copy)), tmp_path / "c")
    assert set(_files(tmp_path / "a")) == {"report.html", "report.md", "report.json"}
    assert _files(tmp_path / "a") == _files(tmp_path / "b") == _files(tmp_path / "c")
    assert first.report == second.report == third.report


def test_report_holds_no_wall_clock_time(drill_log: Path, tmp_path: Path) -> None:
    """The wall-clock time the log recorded for its events appears in none of the files."""
    save_report(asyncio.run(read_report(drill_log)), tmp_path / "out")
    for name, content in _files(tmp_path / "out").items():
        text = content.decode("utf-8")
        # tests.logs.WALL, the wall clock the drill was written at.
        assert "2026-11-23" not in text, name
        assert "<dc:date>" not in text, name
