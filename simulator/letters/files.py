"""Reading a log's letters and writing them as files: HTML, PDF, and an index page."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from simulator.errors import LogFileError
from simulator.letters.compose import letters_of
from simulator.letters.model import Letter
from simulator.letters.render import render_letter, render_pdf
from simulator.logfiles import reading
from simulator.projections import MissingAgreement

LETTERS_DIRECTORY = "letters"


async def read_letters(location: str | Path, *, case: str | None = None) -> list[Letter]:
    """The letters of a log's written messages (only one case's with `case`), in log order.

    A partitioned run's partitions are read as one log (`simulator.logfiles.reading`).
    """
    async with reading(location) as store:
        events = [event async for event in store.read()]
    try:
        return letters_of(events, case=case)
    except MissingAgreement as exc:  # pragma: no cover - letters_of skips without one
        raise LogFileError(str(location), str(exc)) from exc


@dataclass(frozen=True, slots=True)
class LetterFiles:
    html: list[Path]
    pdf: list[Path]
    index: Path


# A letter's file as `letter_stem` names it: position, case, type.
_LETTER_FILE = re.compile(r"\d{5,}-[a-z0-9_-]+-[a-z_]+\.(?:html|pdf)")


def _drop_stale_letters(directory: Path, stems: set[str]) -> None:
    """Remove the letters an earlier run of a command left in `directory` that this one
    does not write: a report written again into its old directory had kept 963 letters
    beside the 29 it listed, and `simulator letters` another log's. Only files named as
    letters are touched."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if _LETTER_FILE.fullmatch(path.name) and path.name.rsplit(".", 1)[0] not in stems:
            path.unlink()


def write_letters(
    letters: Sequence[Letter],
    directory: Path,
    *,
    html: bool = True,
    pdf: bool = True,
    drop_stale: bool = False,
) -> LetterFiles:
    """Each letter as `STEM.html` and `STEM.pdf` in `directory`, and an `index.html` of them.

    `drop_stale`: the letters are all of a log's, so any other letter file in `directory`
    (an earlier run's, another log's) goes, and the directory holds what its index lists.
    """
    if drop_stale:
        _drop_stale_letters(directory, {letter.stem for letter in letters})
    directory.mkdir(parents=True, exist_ok=True)
    pages: list[Path] = []
    prints: list[Path] = []
    for letter in letters:
        if html:
            page = directory / f"{letter.stem}.html"
            page.write_text(render_letter(letter), encoding="utf-8", newline="\n")
            pages.append(page)
        if pdf:
            printed = directory / f"{letter.stem}.pdf"
            printed.write_bytes(render_pdf(letter))
            prints.append(printed)
    index = directory / "index.html"
    index.write_text(render_index(letters, html=html, pdf=pdf), encoding="utf-8", newline="\n")
    return LetterFiles(pages, prints, index)


def render_index(letters: Sequence[Letter], *, html: bool = True, pdf: bool = True) -> str:
    """A page listing the letters in log order, each linked as HTML and PDF."""
    rows = []
    for letter in letters:
        links = " ".join(
            f'<a href="{escape(letter.stem)}.{kind}">{kind.upper()}</a>'
            for kind, wanted in (("html", html), ("pdf", pdf))
            if wanted
        )
        rows.append(
            f"<tr><td>{letter.position}</td><td>{escape(letter.case_id)}</td>"
            f"<td>{escape(letter.reference)}</td><td>{escape(letter.date)}</td>"
            f"<td>{escape(letter.sender_name)}</td><td>{escape(letter.recipient_name)}</td>"
            f"<td>{escape(letter.title)}</td><td>{links}</td></tr>"
        )
    exercise = escape(letters[0].exercise) if letters else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Letters of {exercise}</title><style>"
        'body { font: 14px/1.45 "DejaVu Sans", sans-serif; margin: 2em; } '
        "td, th { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; }"
        "</style></head><body>"
        f"<h1>Letters of {exercise}</h1><p>{len(letters)} letters, one per written message, in "
        "the order they were committed. Training documents: the parties, people and events are "
        "fictional.</p><table><thead><tr><th>pos</th><th>case</th><th>number</th><th>date</th>"
        "<th>from</th><th>to</th><th>letter</th><th></th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>\n"
    )
