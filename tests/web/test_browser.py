"""A whole exercise in Chromium: a trainee's seat and the controller's view, side by side.

`simulator serve` runs in its own process, as a controller would start it;
Debian's Chromium (never a downloaded browser) drives both pages, launched
as the report test launches it. Screenshots go to artifacts/.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Page, sync_playwright

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


def test_a_trainee_refuses_without_reasons_and_the_control_view_shows_art_5_3(
    tmp_path: Path,
) -> None:
    """The seat refuses with no reasons; the control view lists the Art. 5.3 breach within 2 s."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install chromium`")
    port = free_port()
    env = {**os.environ, "SIMULATOR_KEY_DIR": str(tmp_path / "keys"), "COLUMNS": "200"}
    command = [*SIMULATOR, "serve", str(DESK), "--log", str(tmp_path / "run.db")]
    command += ["--port", str(port), "--speed", "60", "--report-dir", str(tmp_path / "report")]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
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

                # The request arrives a simulated minute in; the seat offers what is allowed.
                seat.locator('#cases li[data-case="water-1"]').click(timeout=20_000)
                actions = seat.locator("#actions button[data-kind]")
                actions.first.wait_for(timeout=10_000)
                assert actions.evaluate_all("(all) => all.map((b) => b.dataset.kind)") == [
                    "confirmation_request",
                    "acknowledgement",
                    "consultation",
                    "acceptance",
                    "refusal",
                ]
                control.locator('#board .card[data-case="water-1"]').wait_for(timeout=10_000)

                # The trainee refuses on a ground of Art. 5.1 but gives no reasons (Art. 5.3).
                seat.locator('#actions button[data-kind="refusal"]').click()
                seat.locator('#form-fields input[name="grounds"][value="security"]').check()
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

                # The controller sends the next request now; the trainee handles it properly.
                control.locator('#injects tr[data-inject="request-lorry"] button').click()
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
                ended = ARTIFACTS / "console-control-ended.png"
                control.screenshot(path=str(ended), full_page=True)
                with context.expect_page() as opened:
                    link.click()
                report = opened.value
                report.wait_for_load_state()
                assert "refusal-without-reasons" in report.content()
                assert "Second request acknowledged promptly." not in seat.content()
            finally:
                browser.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "ended: stopped by the controller" in stderr
    assert errors == []
    print(f"Art. 5.3 shown in the control view {shown_after:.2f} s after the click")
