"""report.html in a real browser: headless Chromium renders it without errors or requests."""

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Request, sync_playwright

from simulator.report import ReportData, save_report

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "artifacts"
# Quiet, offline, and able to run as root in a container.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_report_renders_in_chromium_with_charts_and_no_errors(
    drill_report: ReportData, tmp_path: Path
) -> None:
    """Chromium logs no error, requests nothing but the file, and draws every chart."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's Chromium. "
            "Install it with `apt-get install chromium`."
        )
    page_file = save_report(drill_report, tmp_path / "out").html
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            def on_console(message: ConsoleMessage) -> None:
                if message.type in ("error", "warning"):
                    errors.append(f"{message.type}: {message.text}")

            def on_request(request: Request) -> None:
                requests.append(request.url)

            page.on("console", on_console)
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on("request", on_request)
            page.goto(page_file.as_uri(), wait_until="load")
            charts = page.locator("figure svg")
            assert charts.count() == 5
            for index in range(charts.count()):
                box = charts.nth(index).bounding_box()
                assert box is not None, f"chart {index} is not laid out"
                assert box["width"] > 200, (index, box)
                assert box["height"] > 100, (index, box)
            # A chart's own text is laid out too: the lanes of the first case.
            labels = page.locator("#case-case-1 svg text").all_text_contents()
            assert {"alpha", "beta", "written request"} <= {t.strip() for t in labels}
            headings = page.locator("main h2").all_text_contents()
            assert len(headings) == 9
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report-drill.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == [page_file.as_uri()]
    shutil.copy(page_file, ARTIFACTS / "report-drill.html")
