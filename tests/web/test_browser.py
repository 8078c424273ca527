"""A whole exercise in Chromium: a trainee's seat and the controller's view, side by side.

`simulator serve` runs in its own process, as a controller would start it;
Debian's Chromium (never a downloaded browser) drives both pages, launched
as the report test launches it. Screenshots go to artifacts/.
"""

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, ViewportSize, sync_playwright

from tests.report.test_browser import ARGS, ARTIFACTS, CHROMIUM
from tests.web.conftest import DESK

SIMULATOR = [sys.executable, "-m", "simulator"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def read_links(process: "subprocess.Popen[str]", count: int) -> dict[str, str]:
    assert process.stdout is not None
    links: dict[str, str] = {}
    while len(links) < count:
        line = process.stdout.readline()
        assert line, f"simulator serve ended early (exit {process.poll()})"
        name, _, url = line.strip().partition(": ")
        links[name] = url
    return links


def watch_errors(page: Page, errors: list[str], name: str) -> None:
    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            errors.append(f"{name} {message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"{name} page error: {exc}"))


def serve(
    tmp_path: Path, speed: float, *, fork: tuple[Path, int] | None = None
) -> "subprocess.Popen[str]":
    """`simulator serve` on the desk at `speed`, on a free port, with its log in tmp_path.

    `fork` (a log, a position): the run goes on live from that log's first events.
    """
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install chromium`")
    env = {**os.environ, "SIMULATOR_KEY_DIR": str(tmp_path / "keys"), "COLUMNS": "200"}
    command = [*SIMULATOR, "serve", str(DESK), "--log", str(tmp_path / "run.db")]
    command += ["--port", str(free_port()), "--speed", str(speed)]
    command += ["--report-dir", str(tmp_path / "report")]
    if fork is not None:
        command += ["--fork", str(fork[0]), "--at", str(fork[1])]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def parent_run(tmp_path: Path) -> Path:
    """A run of the desk with every seat simulated (Southmere stays silent), to fork live."""
    scenario = tmp_path / "desk-simulated.yaml"
    text = DESK.read_text(encoding="utf-8")
    scenario.write_text(re.sub(r"human: true\b", "human: false", text), encoding="utf-8")
    log = tmp_path / "parent.db"
    env = {**os.environ, "SIMULATOR_KEY_DIR": str(tmp_path / "keys")}
    subprocess.run(
        [*SIMULATOR, "run", str(scenario), "--log", str(log)],
        check=True,
        capture_output=True,
        env=env,
    )
    return log


def test_a_trainee_refuses_without_reasons_and_the_control_view_shows_art_5_3(
    tmp_path: Path,
) -> None:
    """On a live fork: the seat refuses with no reasons and the control view lists the Art. 5.3
    breach within 2 s; the control view, the seat and the report show the fork's lineage, the
    controller's notes and actions (an inject sent by hand) and the letters."""
    parent = parent_run(tmp_path)
    lineage = f"fork (generation 1) of {parent}, from its first 3 events"
    process = serve(tmp_path, 60, fork=(parent, 3))
    errors: list[str] = []
    try:
        links = read_links(process, 2)
        assert set(links) == {"control", "southmere"}
        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=ARGS
            )
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                control = context.new_page()
                seat = context.new_page()
                watch_errors(control, errors, "control")
                watch_errors(seat, errors, "seat")
                control.on("dialog", lambda dialog: dialog.accept())
                control.goto(links["control"])
                seat.goto(links["southmere"])
                # The control view says the run is a fork, of what, from where.
                assert lineage in control.locator("#lineage").inner_text(timeout=10_000)

                # The request came a simulated minute into the parent run, which the fork
                # keeps; the seat offers what is allowed.
                seat.locator('#cases li[data-case="water-1"]').click(timeout=20_000)
                actions = seat.locator("#actions button[data-kind]")
                actions.first.wait_for(timeout=10_000)
                assert actions.evaluate_all("(all) => all.map((b) => b.dataset.kind)") == [
                    "confirmation_request",
                    "acknowledgement",
                    "consultation",
                    "acceptance",
                    "refusal",
                    # Art. 6.1: circumstances are notified "promptly", from receipt on.
                    "impediment_notice",
                    "information_request",
                    "confidentiality_impossible",
                ]
                control.locator('#board .card[data-case="water-1"]').wait_for(timeout=10_000)

                # The trainee refuses on a ground of Art. 5.1 but gives no reasons (Art. 5.3).
                seat.locator('#actions button[data-kind="refusal"]').click()
                ground = seat.locator('#form-fields input[name="grounds"][value="security"]')
                # The checkbox sits left of its label, on the label's line, not above it.
                box = ground.bounding_box()
                text = seat.locator('#form-fields label.row:has(input[value="security"])')
                line = text.bounding_box()
                assert box is not None
                assert line is not None
                assert box["x"] - line["x"] < 8, (box, line)
                assert line["height"] < 2 * box["height"] + 8, (box, line)
                # A placeholder reads as a hint of this form, not as text written in.
                reasons = seat.locator('#form-fields textarea[name="reasons"]')
                hint = reasons.get_attribute("placeholder", timeout=1_000)
                assert hint is not None
                assert hint.startswith("e.g. ")
                ground.check()
                assert seat.locator('#form-fields textarea[name="reasons"]').input_value() == ""
                seat.locator("#send").click()
                clicked = time.monotonic()
                breach = control.locator('#violations li[data-rule="refusal-without-reasons"]')
                breach.wait_for(timeout=2_000)
                shown_after = time.monotonic() - clicked
                assert "Art. 5.3" in breach.inner_text()
                assert shown_after < 2.0
                control.locator('#board .column[data-state="refused"] .card').wait_for()
                seat.locator('#steps li:has-text("refusal")').wait_for(timeout=5_000)
                control.screenshot(path=str(ARTIFACTS / "console-control.png"), full_page=True)
                seat.screenshot(path=str(ARTIFACTS / "console-seat.png"), full_page=True)

                # Each message in the case has its letter: the request, and the refusal.
                links_in_case = seat.locator('#steps li a.letter[data-format="html"]')
                assert links_in_case.count() == 2
                with context.expect_page() as opened:
                    links_in_case.first.click()
                request_letter = opened.value
                request_letter.wait_for_load_state()
                written = request_letter.locator("body").inner_text()
                assert "ЗАПРОС О ПРЕДОСТАВЛЕНИИ ПОМОЩИ" in written.upper()
                assert "Main Organisational Directorate" in written
                request_letter.screenshot(path=str(ARTIFACTS / "letter-seat.png"), full_page=True)
                request_letter.close()

                # The controller sends the next request now; the trainee handles it properly.
                control.locator('#injects tr[data-inject="request-lorry"] button').click()
                sent_by_hand = control.locator(
                    '#notes li[data-kind="action"]', has_text="sent inject request-lorry by hand"
                )
                sent_by_hand.wait_for(timeout=10_000)
                seat.locator('#cases li[data-case="lorry-1"]').click(timeout=10_000)
                seat.locator('#actions button[data-kind="acknowledgement"]').click()
                seat.locator("#send").click()
                seat.locator('#case-state:has-text("under consideration")').wait_for(timeout=10_000)
                control.locator("#note-text").fill("Second request acknowledged promptly.")
                control.locator("#note-form button").click()
                control.locator('#notes li:has-text("acknowledged promptly")').wait_for(
                    timeout=5_000
                )

                # The controller ends the exercise; the report is linked from the control view.
                control.locator("#btn-stop").click()
                link = control.locator("#report-link")
                link.wait_for(timeout=60_000)
                seat.locator("#ended").wait_for(state="visible", timeout=10_000)
                # The end is final and plain: no red button, nothing says "live" any more.
                control.locator("#conn:has-text('final')").wait_for(timeout=10_000)
                assert control.locator("#mode").inner_text() == "ended"
                assert not control.locator("#btn-stop").is_visible()
                assert not control.locator("#note-form").is_visible()
                seat.locator("#conn:has-text('final')").wait_for(timeout=10_000)
                assert not seat.locator("#open-form").is_visible()
                ended = ARTIFACTS / "console-control-ended.png"
                control.screenshot(path=str(ended), full_page=True)
                with context.expect_page() as opened:
                    link.click()
                report = opened.value
                report.wait_for_load_state()
                assert "refusal-without-reasons" in report.content()
                assert "Second request acknowledged promptly." not in seat.content()
                # The report tells the whole story: lineage, notes, actions, letters.
                assert lineage in report.locator("header").inner_text()
                desk = report.locator("#controller").inner_text()
                assert "Second request acknowledged promptly." in desk
                assert "sent inject request-lorry by hand" in desk
                assert "lorry-1" in desk
                report.screenshot(path=str(ARTIFACTS / "report-fork.png"), full_page=True)
                letters = report.locator("#timeline a.letter")
                assert letters.count() >= 4
                letters.first.click()
                report.wait_for_load_state()
                assert "ЗАПРОС О ПРЕДОСТАВЛЕНИИ ПОМОЩИ" in report.locator("h1").inner_text()
            finally:
                browser.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "ended: stopped by the controller" in stderr
    assert errors == []
    print(f"Art. 5.3 shown in the control view {shown_after:.2f} s after the click")


def committed_events(log: Path) -> list[dict[str, Any]]:
    """Every event of a run's log, read-only, as its JSON body."""
    with contextlib.closing(sqlite3.connect(f"file:{log}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT body FROM events ORDER BY position").fetchall()
    return [json.loads(body) for (body,) in rows]


def moment(text: str) -> datetime:
    """A time from the log, or as a page shows it ("2026-05-04 08:05Z": to the minute)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Times taken in the pages are Unix epoch milliseconds (timeOrigin + now): comparable
# across pages. The seat notes when Send is clicked, in the click's capture phase.
NOTE_CLICK = """() => {
  document.getElementById("send").addEventListener("click", () => {
    window.clickedAt = performance.timeOrigin + performance.now();
  }, { capture: true, once: true });
}"""
# The seat's clock as soon as it is redrawn (one round trip: read, then click at once).
FRESH_CLOCK = """(before) => {
  const shown = document.getElementById("clock-time").textContent;
  return shown !== before && shown;
}"""
# When the control view's timeline has a row of this case, kind and "sender → recipient"
# (false until then). Polled on every animation frame, i.e. as the page is painted; a
# locator's wait would back off to a look every 500 ms.
TIMELINE_ROW = """([caseId, kind, parties]) => {
  const shown = [...document.querySelectorAll("#timeline tr")].some((row) => {
    const cells = [...row.cells].map((cell) => cell.textContent.trim());
    return cells[2] === caseId && cells[3] === kind && cells[4] === parties;
  });
  return shown && performance.timeOrigin + performance.now();
}"""


def test_at_x600_a_seats_message_is_shown_in_the_control_view_within_1_s_of_the_click(
    tmp_path: Path,
) -> None:
    """At x600 the seat acknowledges; it is committed and on the control timeline within 1 s.

    Everything before the click waits on conditions with generous timeouts; only the
    click-to-shown interval is held to the requirement (1 s of wall time, 600 simulated
    seconds at x600). The controller and the trainee are two people: each page has its
    own window (a browser context) in the one Chromium, so both are painted; a page in a
    background tab of a headless window gets no animation frames for up to a second.
    """
    speed = 600
    request = ["water-1", "written request", "northmark → southmere"]
    answer = ["water-1", "acknowledgement", "southmere → northmark"]
    process = serve(tmp_path, speed)
    errors: list[str] = []
    try:
        links = read_links(process, 2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=ARGS
            )
            try:
                viewport: ViewportSize = {"width": 1400, "height": 1000}
                control = browser.new_context(viewport=viewport).new_page()
                seat = browser.new_context(viewport=viewport).new_page()
                watch_errors(control, errors, "control")
                watch_errors(seat, errors, "seat")
                control.goto(links["control"])
                seat.goto(links["southmere"])

                # Both pages are live, and the control view lists the request already.
                control.locator('#conn:has-text("live")').wait_for(timeout=30_000)
                seat.locator('#conn:has-text("live")').wait_for(timeout=30_000)
                control.wait_for_function(TIMELINE_ROW, arg=request, timeout=30_000)

                # The seat has the case and may acknowledge it; the form is open.
                seat.locator('#cases li[data-case="water-1"]').click(timeout=30_000)
                seat.locator('#case-title:has-text("Case water-1")').wait_for(timeout=10_000)
                seat.locator('#actions button[data-kind="acknowledgement"]').click(timeout=30_000)
                seat.locator("#form-area").wait_for(state="visible", timeout=10_000)
                assert seat.locator("#form-title").inner_text() == (
                    "acknowledgement · water-1 → northmark"
                )
                assert control.evaluate(TIMELINE_ROW, answer) is False

                # Click just after the seat's clock is redrawn, so what it shows is current.
                seat.evaluate(NOTE_CLICK)
                before = seat.locator("#clock-time").inner_text()
                fresh = seat.wait_for_function(FRESH_CLOCK, arg=before, timeout=30_000)
                seat_time = moment(str(fresh.json_value()))
                clicked = time.monotonic()
                clicked_wall = datetime.now(UTC)
                seat.locator("#send").click()
                seen = control.wait_for_function(
                    TIMELINE_ROW, arg=answer, polling="raf", timeout=10_000
                )
                waited = time.monotonic() - clicked
                shown_after = (float(seen.json_value()) - seat.evaluate("window.clickedAt")) / 1000

                # The seat's notice names the message it sent; its case moved on.
                notice = seat.locator("#notices li", has_text="acknowledgement sent in water-1")
                sent = notice.inner_text(timeout=10_000)
                seat.locator('#case-state:has-text("under consideration")').wait_for(timeout=10_000)
            finally:
                browser.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert errors == []
    print(
        f"x{speed}: acknowledgement shown in the control view {shown_after:.3f} s after the click"
        f" ({waited:.3f} s with the test's own round trips)"
    )
    assert 0 < shown_after < 1.0, f"shown {shown_after:.3f} s after the click"

    # The log holds the acknowledgement, committed after the click and before it was shown.
    message_id, _, _ = sent.partition(": ")
    ours = [
        e
        for e in committed_events(tmp_path / "run.db")
        if e["type"] == "coop.msg.acknowledgement"
        and e["subject"] == "water-1"
        and e["data"]["message"]["message_id"] == message_id
    ]
    assert len(ours) == 1, ours
    committed = ours[0]
    assert (committed["sender"], committed["recipient"]) == ("southmere", "northmark")
    committed_after = (moment(committed["wallclock"]) - clicked_wall).total_seconds()
    assert 0 <= committed_after <= waited, (committed_after, waited)
    # The seat's clock shows whole minutes, never ahead of the umpire's; at x600, 1 s of
    # wall time is 600 simulated seconds.
    simulated = moment(committed["time"]) - seat_time
    print(f"committed {committed_after:.3f} s after the click; {simulated} after the seat's clock")
    assert timedelta(0) <= simulated <= timedelta(seconds=speed)
