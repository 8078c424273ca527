"""A participant's words reach the controller's terminal and the reports as words, never as code.

The attack is made with `mosquitto_pub` and northmark's own credentials against a
realtime exercise on Mosquitto: a request whose essence holds terminal codes (a
window title, a screen clear, a right-to-left override), Rich markup, HTML and
Markdown, and a submission whose message type is that text (the umpire's reason
for rejecting it quotes the type). Then the controller reads the log with
`simulator log show` and writes the report, as a controller would.
"""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token
from playwright.sync_api import Request, sync_playwright

from simulator.eventlog import Event
from simulator.protocol.drafting import draft
from simulator.records import NOTE, REJECTION
from simulator.run.exercise import Exercise, RunOptions
from simulator.scenario import load_scenario
from tests.report.test_browser import ARGS, CHROMIUM
from tests.security.test_ids import EXAMPLE, SPEED, _publish

SIMULATOR = [sys.executable, "-m", "simulator"]
EVIL = "http://evil.example"
HOSTILE = (
    "\x1b]0;owned\x07\x1b[2J\u202eevil [/x] [link=" + EVIL + "/]here[/link] "
    "<script>window.pwned = 1</script> \"><img src=x onerror='window.pwned = 2'> "
    "![t](" + EVIL + "/t.png) [c](javascript:window.pwned=3) \\| cell"
)


async def _hostile_run(log: Path) -> None:
    """The example in realtime on Mosquitto, with northmark's two hostile submissions."""
    scenario = load_scenario(EXAMPLE)
    northmark, southmere = scenario.party("northmark"), scenario.party("southmere")
    seen = asyncio.Event()
    arrived: list[Event] = []

    def watch(events: Sequence[Event]) -> None:
        arrived.extend(e for e in events if e.subject == "hostile-1" or e.type in (REJECTION, NOTE))
        if len(arrived) >= 3:
            seen.set()

    request = draft(
        "written_request",
        message_id="northmark.hostile.1",
        case_id="hostile-1",
        sender=northmark,
        recipient=southmere,
        fields={
            "area": "fuel_and_energy_safety",
            "essence": HOSTILE,
            "purpose": HOSTILE,
            "justification": "An exercise of the reports.",
            "assistance_sought": "None.",
        },
    )
    typed = {**request, "message_id": "northmark.hostile.2", "type": HOSTILE}
    payloads = [
        json.dumps(
            {"kind": "submission", "party": "northmark", "seq": 900 + n, "message": m}
        ).encode()
        for n, m in enumerate((request, typed))
    ]
    options = RunOptions(broker="mosquitto", log=str(log), clock="realtime", speed=SPEED)
    async with Exercise(scenario, options, on_commit=watch) as exercise:
        run = asyncio.create_task(exercise.run())
        await _publish(exercise, "northmark", exercise.topics.submit("northmark"), payloads)
        note = json.dumps({"kind": "control", "command": "note", "text": HOSTILE}).encode()
        await _publish(exercise, "controller", exercise.topics.control, [note])
        async with asyncio.timeout(30):
            await seen.wait()
        await run
    assert any(e.type == REJECTION and "Input tag" in e.data["reason"] for e in arrived)
    assert any(e.subject == "hostile-1" for e in arrived)
    assert any(e.type == NOTE for e in arrived)


def _simulator(log: Path, *args: str) -> str:
    """A command on the log, as the controller of its run (whose key signed it) types it."""
    env = {**os.environ, "COLUMNS": "400", "SIMULATOR_KEY_DIR": str(log.parent / "keys")}
    done = subprocess.run(
        [*SIMULATOR, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _tokens(tokens: Sequence[Token]) -> list[Token]:
    """Every token, the inline ones' children too."""
    found: list[Token] = []
    for token in tokens:
        found.append(token)
        found += _tokens(token.children or [])
    return found


@pytest.fixture(scope="module")
def hostile_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hostile run for the module's tests (it takes about 10 s)."""
    log = tmp_path_factory.mktemp("hostile") / "run.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIMULATOR_KEY_DIR", str(log.parent / "keys"))
        asyncio.run(_hostile_run(log))
    return log


def test_log_show_prints_a_participants_words_with_their_control_codes_escaped(
    hostile_log: Path,
) -> None:
    """`[/x]` had stopped `log show` with a Rich MarkupError; without it, ESC and BEL reached
    the terminal (its title set to "owned", its screen cleared), the right-to-left override
    turned the line around and `[link=…]` became a hyperlink."""
    out = _simulator(hostile_log, "log", "show", str(hostile_log))
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\u202e" not in out
    shown = "\\x1b]0;owned\\x07\\x1b[2J\\u202eevil [/x] [link=" + EVIL + "/]here[/link]"
    request, rejection, note = (line for line in out.splitlines() if shown in line)
    assert "written_request" in request
    assert "coop.rejection" in rejection
    assert "note: " + shown in note


def test_report_md_shows_a_participants_words_never_as_markdown_or_html(
    hostile_log: Path, tmp_path: Path
) -> None:
    """A rejection's reason, which quotes what was sent, went into report.md as written:
    rendered, it showed an image fetched from the participant's server, made a
    `javascript:` link, and its `\\|` ended the cell, pushing the rest of the row along."""
    _simulator(hostile_log, "report", str(hostile_log), "-o", str(tmp_path / "report"))
    text = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    markdown = MarkdownIt("commonmark").enable("table")
    tokens = _tokens(markdown.parse(text))
    assert [t for t in tokens if t.type in ("image", "html_inline", "html_block")] == []
    # The report's own links go to its letters, and only there.
    links = [str(t.attrs["href"]) for t in tokens if t.type == "link_open"]
    assert links
    assert [link for link in links if not link.startswith("letters/")] == []
    rendered = markdown.render(text)
    assert "<script" not in rendered
    assert "<img" not in rendered
    rejections = rendered.split("<h2>6. Rejections</h2>")[1].split("<h2>")[0]
    [row] = [r for r in rejections.split("<tr>") if "Input tag" in r]
    assert row.count("<td>") == 5
    assert "![t](" + EVIL + "/t.png) [c](javascript:window.pwned=3) \\| cell" in row
    # The controller's note, in its table, as written (in words about its case, it was).
    desk = rendered.split("<h2>3. The controller")[1].split("<h2>")[0]
    [row] = [r for r in desk.split("<tr>") if "owned" in r]
    assert row.count("<td>") == 6
    assert "![t](" + EVIL + "/t.png) [c](javascript:window.pwned=3) \\| cell" in row


def test_report_html_shows_a_participants_words_as_text_in_chromium(
    hostile_log: Path, tmp_path: Path
) -> None:
    """No script of the participant's runs and nothing is fetched from its server."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install chromium`")
    _simulator(hostile_log, "report", str(hostile_log), "-o", str(tmp_path / "report"))
    page_file = tmp_path / "report" / "report.html"
    requests: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            page = browser.new_page()

            def on_request(request: Request) -> None:
                requests.append(request.url)

            page.on("request", on_request)
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            page.goto(page_file.as_uri(), wait_until="load")
            assert page.evaluate("typeof window.pwned") == "undefined"
            assert page.locator("img").count() == 0
            assert page.locator("main script").count() == 0
            timeline = page.locator("#timeline").inner_text()
            rejections = page.locator("#rejections").inner_text()
        finally:
            browser.close()
    assert requests == [page_file.as_uri()]
    assert dialogs == []
    assert "<script>window.pwned = 1</script>" in rejections
    assert "\u202eevil [/x]" in timeline
