"""Letters: every written message as the official letter it stands for, in Russian and English.

The PDFs are laid out by WeasyPrint and read back with pdftotext, so what is
checked is what a reader of the printed letter finds.
"""

import asyncio
import http.server
import re
import shutil
import sqlite3
import subprocess
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from simulator.cli import app
from simulator.errors import SimulatorError
from simulator.eventlog import Event
from simulator.letters import Letter, letters_of, render_letter, render_pdf
from simulator.letters.model import Block
from simulator.logfiles import open_log
from simulator.protocol import MESSAGE_TYPES, Agreement, parse_message
from simulator.records import record_exercise_started
from simulator.signing import Signatories
from simulator.umpire.sequencer import Sequencer
from tests.logs import WALL
from tests.protocol.builders import (
    BY_ID,
    FROM_REQUESTING,
    PARTIES,
    SETTINGS,
    T0,
    signed_by,
    valid_fields,
)

SIGNATORIES = Signatories.training("letters", PARTIES)
AGREEMENT = Agreement.of(PARTIES, SETTINGS, SIGNATORIES.verify)
WRITTEN = [kind for kind in MESSAGE_TYPES if kind != "oral_request"]
LANGUAGES = ("ru", "en")
RUSSIAN_ESSENCE = "Финал регионального турнира проходит рядом с электростанцией «Северный берег»."
ARTIFACTS = Path(__file__).parents[2] / "artifacts"


def _message(kind: str, language: str, case: str, number: int, **extra: Any) -> dict[str, Any]:
    sender, recipient = ("alpha", "beta") if kind in FROM_REQUESTING else ("beta", "alpha")
    message = {
        "type": kind,
        "message_id": f"{sender}.{number}",
        "case_id": case,
        "sender": sender,
        "recipient": recipient,
        "language": language,
        **valid_fields(kind, sender, recipient),
        **extra,
    }
    if kind in ("written_request", "written_confirmation") and language == "ru":
        message["essence"] = RUSSIAN_ESSENCE
    if kind == "additional_confirmation":
        # Art. 4.2's answer to a doubt is signed as the request was.
        message |= signed_by(sender)
    if "signature" in message:
        message = SIGNATORIES.sign(message)
    return message


def _events(tmp_path: Path) -> list[Event]:
    """One case per written type and language: an oral request first where one is confirmed,
    then (for a reply) a written request it answers, then the message itself."""
    sequencer = Sequencer(AGREEMENT, "letters", wallclock=lambda: WALL)
    sequencer.stage(
        record_exercise_started(
            AGREEMENT,
            event_id="start",
            exercise="letters",
            at=T0,
            wallclock=WALL,
            signatures=SIGNATORIES.record(),
        )
    )
    number = 0
    at = T0
    for kind in WRITTEN:
        for language in LANGUAGES:
            case = f"{kind.replace('_', '-')}-{language}"
            extra: dict[str, Any] = {}
            opening = "oral_request" if kind == "written_confirmation" else "written_request"
            if kind not in ("written_request", "offer"):
                number += 1
                at += timedelta(hours=1)
                first = _message(opening, language, case, number)
                sequencer.record(parse_message(first), at, party=first["sender"])
                extra["in_reply_to"] = first["message_id"]
                if kind == "written_confirmation":
                    extra = {"confirms": first["message_id"]}
            number += 1
            at += timedelta(hours=1)
            message = _message(kind, language, case, number, **extra)
            sequencer.record(parse_message(message), at, party=message["sender"])

    async def write() -> list[Event]:
        async with open_log(tmp_path / "letters.db", create=True, now=lambda: WALL) as store:
            await store.append(sequencer.take().events)
            return [e async for e in store.read()]

    return asyncio.run(write())


def _pdf_text(letter: Letter, directory: Path) -> str:
    """The printed letter's text as pdftotext reads it, whitespace folded."""
    path = directory / f"{letter.stem}.pdf"
    path.write_bytes(render_pdf(letter))
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    return " ".join(out.stdout.split())


@pytest.fixture(scope="module")
def letters(tmp_path_factory: pytest.TempPathFactory) -> list[Letter]:
    return letters_of(_events(tmp_path_factory.mktemp("letters")))


def test_every_written_message_has_its_letter_in_russian_and_english(
    letters: list[Letter],
) -> None:
    """One letter per written message: each type in each language, none for oral requests."""
    shown = {(letter.message_type, letter.template) for letter in letters}
    assert shown == {(kind, language) for kind in WRITTEN for language in LANGUAGES}
    assert not [letter for letter in letters if letter.message_type == "oral_request"]


def test_each_pdf_names_parties_reference_signatory_and_a_refusals_reasons(
    letters: list[Letter], tmp_path: Path
) -> None:
    """pdftotext finds in every letter: both parties, the number, the signatory, the check."""
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is missing: scripts/check installs poppler-utils")
    chosen = {
        (letter.message_type, letter.template): letter
        for letter in letters
        if letter.case_id.endswith(f"-{letter.template}")
    }
    assert len(chosen) == len(WRITTEN) * len(LANGUAGES)
    for (kind, language), letter in sorted(chosen.items()):
        text = _pdf_text(letter, tmp_path)
        folded = text.casefold()
        sender, recipient = (BY_ID[p] for p in _parties(kind))
        where = f"{kind} ({language})"
        assert sender.name.casefold() in folded, where
        assert recipient.name.casefold() in folded, where
        assert recipient.coordination_unit in text, where  # Art. 10: the addressee
        assert letter.reference in text, where
        assert letter.signatory is not None, where
        assert letter.signatory.name in text, where
        assert letter.verification in text, where
        if language == "ru":
            assert re.search("[А-Яа-яЁё]{5,}", text), where
            assert letter.title.casefold() in folded, where
            assert "№" in text, where
        if kind == "refusal":
            assert "The station is closed to foreign staff." in text, where
            grounds = "ущерб безопасности" if language == "ru" else "harm the security"
            assert grounds in text, where
        if kind in ("written_request", "written_confirmation", "additional_confirmation"):
            assert letter.check == "verified", where
            if language == "ru" and kind != "additional_confirmation":
                assert RUSSIAN_ESSENCE in text, where
    ARTIFACTS.mkdir(exist_ok=True)
    for kind in ("written_request", "refusal"):
        for language in LANGUAGES:
            (ARTIFACTS / f"letter-{kind}-{language}.pdf").write_bytes(
                render_pdf(chosen[(kind, language)])
            )


def _parties(kind: str) -> tuple[str, str]:
    return ("alpha", "beta") if kind in FROM_REQUESTING else ("beta", "alpha")


def test_a_reply_names_the_letter_it_answers_and_a_request_its_headings(
    letters: list[Letter],
) -> None:
    """An answer cites the number and date of its request; a request has Art. 4.3's headings."""
    refusal = next(x for x in letters if x.case_id == "refusal-ru" and x.message_type == "refusal")
    request = next(x for x in letters if x.case_id == "refusal-ru" and x.message_type != "refusal")
    assert refusal.reply_reference == request.reference
    assert refusal.reply_date == request.date
    headings = [block.heading for block in request.blocks if block.heading]
    assert [h for h in headings if h[:2] in ("1.", "2.", "3.", "4.", "5.")] == [
        "1. Наименование запрашивающей и запрашиваемой Сторон",
        "2. Изложение существа дела",
        "3. Цель и обоснование запроса",
        "4. Описание содержания запрашиваемой помощи",
        "5. Иная информация, полезная для надлежащего исполнения запроса",
    ]
    english = next(x for x in letters if x.case_id == "written-request-en")
    assert english.date == "2 March 2026"
    assert english.signatory is not None
    assert (english.signatory.name, english.signatory.role) == ("A. Head", "head")


def test_a_forged_signature_is_said_not_to_verify(tmp_path: Path) -> None:
    """A request signed with a key that is not its signatory's: the letter says so."""
    sequencer = Sequencer(AGREEMENT, "letters", wallclock=lambda: WALL)
    forged = SIGNATORIES.forged(_message("written_request", "en", "forged-1", 1))
    sequencer.record(parse_message(forged), T0, party="alpha")

    async def write() -> list[Event]:
        async with open_log(tmp_path / "forged.db", create=True, now=lambda: WALL) as store:
            await store.append(sequencer.take().events)
            return [e async for e in store.read()]

    (letter,) = letters_of(asyncio.run(write()), AGREEMENT)
    assert letter.check == "invalid"
    assert "does NOT verify" in letter.verification
    assert "does NOT verify" in render_letter(letter)


def test_a_letters_page_is_self_contained(letters: list[Letter]) -> None:
    """The HTML letter fetches nothing: no link, script, image or URL."""
    page = render_letter(letters[0])
    assert "<script" not in page
    assert "<link" not in page
    assert "<img" not in page
    assert "url(" not in page
    assert "href=" not in page


def test_the_letters_command_writes_a_cases_letters_and_an_index(tmp_path: Path) -> None:
    """`simulator letters LOG -o DIR --case ID`: that case's letters, HTML and PDF, an index."""
    _events(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["letters", str(tmp_path / "letters.db"), "-o", str(out), "--case", "refusal-en"]
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    stems = sorted({Path(n).stem for n in names if n != "index.html"})
    assert len(stems) == 2
    assert all(f"{stem}.{suffix}" in names for stem in stems for suffix in ("html", "pdf"))
    index = (out / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{stem}.pdf"' in index for stem in stems)
    missing = CliRunner().invoke(
        app, ["letters", str(tmp_path / "letters.db"), "-o", str(out), "--case", "nope"]
    )
    assert missing.exit_code == 1


def test_letters_written_again_into_a_directory_keep_only_this_logs(tmp_path: Path) -> None:
    """`simulator letters` into a directory that holds the letters of another (here: a longer)
    log: afterwards it holds this log's letters and their index only, as a report's letters
    directory does; other files are left alone, and so are other cases' letters with --case.

    Before: the other log's letters stayed beside this one's, unlisted, with nothing to
    tell them apart.
    """
    _events(tmp_path)
    longer, shorter = tmp_path / "letters.db", tmp_path / "shorter.db"
    shutil.copyfile(longer, shorter)
    with sqlite3.connect(shorter) as db:
        db.execute("DELETE FROM events WHERE position > 6")
    db.close()
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    def written(log: Path, *more: str) -> set[str]:
        result = CliRunner().invoke(
            app, ["letters", str(log), "-o", str(out), "--format", "html", *more]
        )
        assert result.exit_code == 0, result.output
        return {p.name for p in out.iterdir()}

    everything = written(longer)
    mine = written(shorter)
    index = (out / "index.html").read_text(encoding="utf-8")
    kept = {name for name in mine if name not in ("index.html", "notes.txt")}
    assert kept < everything - {"index.html", "notes.txt"}
    assert kept == set(re.findall(r'href="([^"]+)"', index))
    assert "notes.txt" in mine
    one_case = sorted(kept)[0].split("-", 1)[1].rsplit("-", 1)[0]
    assert written(shorter, "--case", one_case) == mine


def test_without_pango_a_pdf_says_what_to_install(
    letters: list[Letter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh machine before `scripts/check`: the message names the packages, not a trace."""
    import builtins  # noqa: PLC0415 - only this test needs it

    real_import = builtins.__import__

    def no_pango(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pango)
    with pytest.raises(SimulatorError) as caught:
        render_pdf(letters[0])
    assert "install libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core" in str(caught.value)
    assert "--format html" in str(caught.value)


def test_a_word_longer_than_the_line_is_broken_not_cut_off_the_page(
    letters: list[Letter], tmp_path: Path
) -> None:
    """A 300-character URL in a request and a 120-character signatory's name: a PDF had
    clipped what ran past the margin (a 183-character URL lost about 50 characters)."""
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is missing: scripts/check installs poppler-utils")
    request = next(
        letter
        for letter in letters
        if letter.message_type == "written_request" and letter.template == "en"
    )
    url = "https://example.org/" + "".join(f"{n:03d}x" for n in range(70))
    name = "Wolfeschlegelsteinhausenbergerdorff" * 3 + "-Longname"
    assert request.signatory is not None
    long = request.model_copy(
        update={
            "blocks": [
                *request.blocks,
                Block(heading="Annex", lines=[f"See {url} for the manifest."]),
            ],
            "signatory": request.signatory.model_copy(update={"name": name}),
        }
    )
    printed = "".join(_pdf_text(long, tmp_path).split())
    assert url in printed
    assert name in printed


def test_an_oral_request_is_cited_by_its_date_never_as_a_numbered_letter(
    tmp_path: Path,
) -> None:
    """Art. 4.2: an oral request is no letter. An acceptance had said "Ref. your No.
    oral-ru/1", a written confirmation "Ref. your No." of its sender's own oral request,
    and the Russian confirmation ended "… 2026 г..": now the answer cites the oral
    request of its date, the confirmation answers no letter, and one full stop ends it."""
    sequencer = Sequencer(AGREEMENT, "letters", wallclock=lambda: WALL)
    sequencer.stage(
        record_exercise_started(
            AGREEMENT, event_id="start", exercise="letters", at=T0, wallclock=WALL,
            signatures=SIGNATORIES.record(),
        )
    )  # fmt: skip
    for language in LANGUAGES:
        case = f"oral-{language}"
        oral = _message("oral_request", language, case, 1, urgent=True)
        oral["message_id"] = f"alpha.{case}"
        accepted = _message("acceptance", language, case, 2, in_reply_to=oral["message_id"])
        accepted["message_id"] = f"beta.{case}"
        answered = {"confirms": oral["message_id"], "in_reply_to": oral["message_id"]}
        confirmed = _message("written_confirmation", language, case, 3, urgent=True, **answered)
        confirmed["message_id"] = f"alpha.{case}.w"
        for hours, message in enumerate((oral, accepted, confirmed), start=1):
            sequencer.record(
                parse_message(message), T0 + timedelta(hours=hours), party=message["sender"]
            )

    async def write() -> list[Event]:
        async with open_log(tmp_path / "oral.db", create=True, now=lambda: WALL) as store:
            await store.append(sequencer.take().events)
            return [e async for e in store.read()]

    letters = letters_of(asyncio.run(write()))
    by = {(x.case_id, x.message_type): x for x in letters}
    for language, cited, confirms in (
        ("ru", "На Ваш устный запрос от 2 марта 2026 г.",
         "Подтверждаем в письменной форме устный запрос от 2 марта 2026 г."),
        ("en", "Ref. your oral request of 2 March 2026",
         "We confirm in writing the oral request of 2 March 2026."),
    ):  # fmt: skip
        acceptance = by[(f"oral-{language}", "acceptance")]
        assert acceptance.reply_reference is None
        page = render_letter(acceptance)
        assert cited in page
        assert "oral-" + language + "/1" not in page
        confirmation = by[(f"oral-{language}", "written_confirmation")]
        assert confirmation.reply_reference is None
        assert confirmation.reply_oral_date is None, "its own oral request is not the addressee's"
        assert confirmation.blocks[0].lines == [confirms]


def test_a_pdf_fetches_nothing_its_page_names(
    letters: list[Letter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were a participant's words ever to reach a letter's markup (every field is escaped
    today), an image, a style and a stylesheet naming a server of theirs and a file of the
    controller's machine are not fetched: the server sees no request, and the file's text is
    not in the PDF. Before: WeasyPrint's default fetcher fetched both."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the controller's own file", encoding="utf-8")
    asked: list[str] = []

    class Counting(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"body { color: red }")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    served = threading.Thread(target=server.serve_forever, daemon=True)
    served.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        planted = (
            f'<link rel="stylesheet" href="{base}/sheet.css">'
            f'<style>@import url("{base}/imported.css");'
            f' p {{ background: url("{base}/bg.png") }}</style>'
            f'<img src="{base}/pixel.png"><object data="{secret.as_uri()}"></object>'
            f'<img src="{secret.as_uri()}">'
        )
        real = render_letter

        def with_planted(letter: Letter) -> str:
            return real(letter).replace("</body>", planted + "</body>")

        monkeypatch.setattr("simulator.letters.render.render_letter", with_planted)
        pdf = tmp_path / "planted.pdf"
        pdf.write_bytes(render_pdf(letters[0]))
    finally:
        server.shutdown()
        server.server_close()
    assert asked == []
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "the controller's own file" not in text


def test_control_and_bidi_characters_are_written_out_in_a_letter(
    letters: list[Letter], tmp_path: Path
) -> None:
    """A message's words holding ESC, a bidi override and a zero-width space: the HTML letter
    and the PDF show them written out (`\\x1b`, `\\u202e`, `\\u200b`), as `log show` does.
    Before: an empty box, a line turned around, an invisible mark."""
    words = "Results\x1b[2J attached \u202eeno-driew\u202c and\u200bhidden"
    letter = letters[0].model_copy(
        update={"blocks": [Block(heading="Summary", lines=[words]), *letters[0].blocks]}
    )
    page = render_letter(letter)
    assert "\x1b" not in page
    assert "\u202e" not in page
    assert "\u200b" not in page
    assert "Results\\x1b[2J attached \\u202eeno-driew\\u202c and\\u200bhidden" in page
    text = _pdf_text(letter, tmp_path)
    assert "Results\\x1b[2J attached \\u202eeno-driew\\u202c and\\u200bhidden" in text
