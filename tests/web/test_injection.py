"""A trainee's words in the console, its letters and its report: shown as text in Chromium.

The seat posts its form with its own token, as any HTTP client can (no page
in between to tidy what it sends); the controller writes a note. Both hold
HTML, an inline script, a `javascript:` link, Markdown and terminal codes. The
controller's view, the seat's own view, the letter and the report are then
opened in Debian's Chromium: nothing of it is markup, no script of it runs
and nothing is fetched from the participant's server.
"""

import signal
from pathlib import Path

import httpx
from playwright.sync_api import Dialog, Page, Request, sync_playwright

from tests.report.test_browser import ARGS, CHROMIUM
from tests.security.test_injection import EVIL, HOSTILE
from tests.web.test_browser import read_links, serve, watch_errors

# What a page would hold had the participant's words been read as markup.
PLANTED = """() => [
  typeof window.pwned !== "undefined",
  document.querySelector(
    'img[src="x"], script:not([src]):not([type="application/json"]), a[href^="javascript"]'
  ) !== null,
  [...document.querySelectorAll("[href], [src]")].some(
    (node) => (node.getAttribute("href") || node.getAttribute("src")).includes("evil")),
]"""


def _clean(page: Page) -> None:
    assert page.evaluate(PLANTED) == [False, False, False], page.url


def test_a_seats_words_and_a_note_are_text_in_every_page_chromium_opens(tmp_path: Path) -> None:
    """The control view shows the seat's conditions and the note as written; the seat, its
    letter and the report too; no dialog, no request beyond the console's own pages."""
    process = serve(tmp_path, 60)
    errors: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    try:
        links = read_links(process, 2)
        origin = links["control"].split("/control", 1)[0]
        seat_token = links["southmere"].split("token=", 1)[1]
        control_token = links["control"].split("token=", 1)[1]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=ARGS
            )
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1000})

                def on_request(request: Request) -> None:
                    requests.append(request.url)

                def answer(dialog: Dialog) -> None:
                    # The console's own "End the exercise for everyone?" is answered yes.
                    dialogs.append(dialog.message)
                    dialog.accept()

                context.on("request", on_request)
                control = context.new_page()
                seat = context.new_page()
                for name, page in (("control", control), ("seat", seat)):
                    watch_errors(page, errors, name)
                    page.on("dialog", answer)
                shown = control.goto(links["control"])
                assert shown is not None
                assert "script-src 'self'" in shown.headers["content-security-policy"]
                seat.goto(links["southmere"])
                seat.locator('#cases li[data-case="water-1"]').wait_for(timeout=30_000)

                with httpx.Client(base_url=origin, timeout=30) as client:
                    sent = client.post(
                        "/seat/southmere/send",
                        params={"token": seat_token},
                        json={
                            "kind": "consultation",
                            "case": "water-1",
                            "values": {"conditions": HOSTILE, "note": HOSTILE},
                        },
                    )
                    assert sent.status_code == 200, sent.text
                    noted = client.post(
                        "/control/command",
                        params={"token": control_token},
                        json={"command": "note", "text": HOSTILE},
                    )
                    assert noted.status_code == 200, noted.text

                control.locator("#timeline", has_text="owned").wait_for(timeout=10_000)
                control.locator("#notes", has_text="owned").wait_for(timeout=10_000)
                assert "<script>window.pwned = 1</script>" in control.locator("#notes").inner_text()
                _clean(control)
                seat.locator('#cases li[data-case="water-1"]').click()
                seat.locator("#steps li", has_text="consultation").wait_for(timeout=10_000)
                _clean(seat)

                with context.expect_page() as opened:
                    seat.locator('#steps li a.letter[data-format="html"]').last.click()
                letter = opened.value
                letter.on("dialog", answer)
                letter.wait_for_load_state()
                assert "<script>window.pwned = 1</script>" in letter.locator("body").inner_text()
                _clean(letter)

                control.locator("#btn-stop").click()
                control.locator("#report-link").wait_for(timeout=60_000)
                with context.expect_page() as opened:
                    control.locator("#report-link").click()
                report = opened.value
                report.on("dialog", answer)
                report.wait_for_load_state()
                assert (
                    "<script>window.pwned = 1</script>"
                    in report.locator("#controller").inner_text()
                )
                _clean(report)
            finally:
                browser.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert dialogs == ["End the exercise for everyone?"]
    assert errors == []
    assert [url for url in requests if not url.startswith(origin)] == []
    assert [url for url in requests if EVIL in url or url.endswith("/x")] == []
