"""The console's sequence chart in Chromium: every label inside the chart, however many rules.

console.js is loaded into an empty page and its chart drawn from steps made here, so
the layout is checked without running an exercise.
"""

import itertools
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.report.test_browser import ARGS, ARTIFACTS, CHROMIUM

CONSOLE_JS = Path(__file__).parents[2] / "simulator" / "web" / "static" / "console.js"
RULES = [
    "refusal-without-reasons",
    "refusal-without-consultation",
    "refusal-ground-not-in-article-5",
    "not-working-language",
]
STEPS = [
    {"position": 2, "time": "2026-05-04T08:01:00Z", "type": "written_request",
     "sender": "northmark", "recipient": "southmere", "gist": "", "rules": []},
    {"position": 3, "time": "2026-05-04T09:00:00Z", "type": "refusal",
     "sender": "southmere", "recipient": "northmark", "gist": "", "rules": RULES},
    {"position": 4, "time": "2026-05-04T09:10:00Z", "type": "note", "sender": None,
     "recipient": None, "rules": [], "desk": True,
     "gist": "Four breaches in one refusal: a long note that runs on well past the width"
     " of both lanes of this chart, so that it has to be fitted in."},
    {"position": 5, "time": "2026-05-04T10:00:00Z", "type": "confidentiality_impossible",
     "sender": "southmere", "recipient": "northmark", "gist": "", "rules": RULES[:1]},
]  # fmt: skip

# Every text of the chart with its box, in the chart's own units.
BOXES = """(steps) => {
  const chart = sequenceChart(steps);
  document.body.append(chart);
  const width = chart.viewBox.baseVal.width;
  return { width, texts: [...chart.querySelectorAll("text")].map((t) => {
    const box = t.getBBox();
    return { text: t.textContent, kind: t.getAttribute("class"), left: box.x,
             right: box.x + box.width, top: box.y, bottom: box.y + box.height };
  }) };
}"""


def test_a_message_with_four_violations_keeps_its_type_and_rules_inside_the_chart() -> None:
    """The type above the arrow, one rule a line below it, every label within the chart."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install chromium`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.set_content("<!doctype html><html><body></body></html>")
            page.add_script_tag(content=CONSOLE_JS.read_text(encoding="utf-8"))
            drawn = page.evaluate(BOXES, STEPS)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "console-chart-four-rules.png"))
        finally:
            browser.close()
    width = drawn["width"]
    texts = drawn["texts"]
    for text in texts:
        assert text["left"] >= 0, text
        assert text["right"] <= width, text
    shown = [t["text"] for t in texts]
    assert "refusal" in shown
    assert [t["text"] for t in texts if t["kind"] == "rule"] == [
        *(f"⚠ {rule}" for rule in RULES),
        f"⚠ {RULES[0]}",
    ]
    # No two labels overlap: each line of text has a band of its own.
    bands = sorted((t["top"], t["bottom"]) for t in texts if t["kind"] in ("rule", "kind"))
    for (_, above), (below, _) in itertools.pairwise(bands):
        assert below >= above - 1, bands
    assert any(t.startswith("✎ note: Four breaches") for t in shown)
