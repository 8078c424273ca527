"""Writing a report's three files (report.html, report.md, report.json) from a log."""

from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path

from simulator.errors import LogFileError
from simulator.letters import LETTERS_DIRECTORY, Letter, letters_of, write_letters
from simulator.logfiles import reading
from simulator.projections import MissingAgreement
from simulator.records import EXERCISE_STARTED
from simulator.report.builder import build_report
from simulator.report.formatting import DEFAULT_CHARTED_CASES, MAX_LETTERS, Lettered
from simulator.report.html_page import render_html
from simulator.report.markdown_page import render_markdown
from simulator.report.model import ReportData


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    markdown: Path
    json: Path
    report: ReportData
    # The pages of long tables, beside report.html (see html_page._paged).
    pages: list[Path] = field(default_factory=list)


def render_json(report: ReportData) -> str:
    """report.json: the report's data, keys in model order, UTF-8 text kept as is.

    pydantic-core writes the text json.dumps(report.as_json(), indent=2,
    ensure_ascii=False) writes, byte for byte, for a model without floats (it
    writes small floats otherwise; tests/report/test_large.py checks the model
    has none), seven times faster: json's encoder runs in Python when it indents.
    """
    return report.model_dump_json(indent=2, exclude=report.unchecked()) + "\n"


async def read_report(location: str | Path) -> ReportData:
    """Open a log read-only (a SQLite path or a postgresql:// URL) and build its report.

    A partitioned run's partitions are read as one log (`simulator.logfiles.reading`).
    """
    async with reading(location) as store:
        try:
            return await build_report(store)
        except MissingAgreement as exc:
            raise LogFileError(str(location), str(exc)) from exc


def lettered_cases(report: ReportData, charted_cases: int) -> Set[str] | None:
    """The cases whose letters a report writes: None for all of them, unless there are more
    than MAX_LETTERS written messages, and then the charted cases' only."""
    written = sum(1 for row in report.timeline if row.letter)
    if written <= MAX_LETTERS:
        return None
    return frozenset(case.case_id for case in report.cases[: max(charted_cases, 0)])


async def read_report_letters(
    location: str | Path, cases: Set[str] | None, until: int | None = None
) -> list[Letter]:
    """The letters of a log's written messages in ``cases`` (all with None), in log order,
    up to position ``until`` (the report's last: a log still being written has more by
    the time its letters are read, which the report would not know of).

    As simulator.letters.read_letters, but events of other cases are dropped as they
    are read rather than kept and composed (a case's letters cite only its own).
    """
    async with reading(location) as store:
        events = [
            event
            async for event in store.read(until=until)
            if cases is None or event.subject in cases or event.type == EXERCISE_STARTED
        ]
    try:
        return letters_of(events)
    except MissingAgreement as exc:  # pragma: no cover - letters_of skips without one
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
    linked: Lettered = False
    if letters is not None:
        write_letters(letters, directory / LETTERS_DIRECTORY, pdf=False, drop_stale=True)
        # Past MAX_LETTERS only some cases' letters are written: link exactly those.
        linked = (
            True
            if lettered_cases(report, charted_cases) is None
            else frozenset(f"{LETTERS_DIRECTORY}/{letter.stem}.html" for letter in letters)
        )
    pages: dict[str, str] = {}
    files = ReportFiles(
        html=directory / "report.html",
        markdown=directory / "report.md",
        json=directory / "report.json",
        report=report,
    )
    # newline="\n": the same bytes on every platform, so reports can be compared.
    files.html.write_text(
        render_html(report, charted_cases=charted_cases, letters=linked, pages=pages),
        encoding="utf-8",
        newline="\n",
    )
    for name, page in pages.items():
        path = directory / name
        path.write_text(page, encoding="utf-8", newline="\n")
        files.pages.append(path)
    files.markdown.write_text(
        render_markdown(report, charted_cases=charted_cases, letters=linked),
        encoding="utf-8",
        newline="\n",
    )
    files.json.write_text(render_json(report), encoding="utf-8", newline="\n")
    return files
