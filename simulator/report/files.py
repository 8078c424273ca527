"""Writing a report's three files (report.html, report.md, report.json) from a log."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import LogFileError
from simulator.letters import LETTERS_DIRECTORY, Letter, write_letters
from simulator.logfiles import open_log
from simulator.projections import MissingAgreement
from simulator.report.builder import build_report
from simulator.report.formatting import DEFAULT_CHARTED_CASES
from simulator.report.html_page import render_html
from simulator.report.markdown_page import render_markdown
from simulator.report.model import ReportData


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    markdown: Path
    json: Path
    report: ReportData


def render_json(report: ReportData) -> str:
    """report.json: the report's data, keys in model order, UTF-8 text kept as is."""
    return json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n"


async def read_report(location: str | Path) -> ReportData:
    """Open a log read-only (a SQLite path or a postgresql:// URL) and build its report."""
    async with open_log(location, read_only=True) as store:
        try:
            return await build_report(store)
        except MissingAgreement as exc:
            raise LogFileError(str(location), str(exc)) from exc


def save_report(
    report: ReportData,
    directory: Path,
    *,
    charted_cases: int = DEFAULT_CHARTED_CASES,
    letters: Sequence[Letter] | None = None,
) -> ReportFiles:
    """Render the report and write its three files into `directory` (made if missing).

    With `letters` (`simulator.letters.read_letters` of the same log) each goes
    beside them as `letters/STEM.html`, with an index, and the report links them.
    Plain, not async: rendering is CPU work and writing local files is quick, so
    the caller reads the log asynchronously first and then calls this.
    """
    directory.mkdir(parents=True, exist_ok=True)
    linked = letters is not None
    if letters is not None:
        write_letters(letters, directory / LETTERS_DIRECTORY, pdf=False)
    files = ReportFiles(
        html=directory / "report.html",
        markdown=directory / "report.md",
        json=directory / "report.json",
        report=report,
    )
    # newline="\n": the same bytes on every platform, so reports can be compared.
    files.html.write_text(
        render_html(report, charted_cases=charted_cases, letters=linked),
        encoding="utf-8",
        newline="\n",
    )
    files.markdown.write_text(
        render_markdown(report, charted_cases=charted_cases, letters=linked),
        encoding="utf-8",
        newline="\n",
    )
    files.json.write_text(render_json(report), encoding="utf-8", newline="\n")
    return files
