"""A letter as print-ready HTML (Jinja2, A4) and as PDF (WeasyPrint lays out that HTML).

The page is self-contained: its style is inline and it names only fonts the
machine has (DejaVu, which has Cyrillic), so a browser and WeasyPrint draw
the same letter and nothing is fetched.
"""

from pathlib import Path
from typing import Any

import jinja2

from simulator.errors import SimulatorError
from simulator.letters.model import Letter
from simulator.letters.vocabulary import TEMPLATES
from simulator.terminal import visible


def _shown(value: Any) -> Any:
    """Every value the page shows: control and bidi characters written as escapes.

    A participant's words may hold ESC, a bidi override or a zero-width space; on the
    page they were an empty box, an invisible mark or a line turned around (PDF and
    browser alike). Written out (`\\x1b`, `\\u202e`), as `log show` prints them, a
    reader sees what was sent.
    """
    return visible(value) if isinstance(value, str) else value


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    finalize=_shown,
)


def _css_text(text: str) -> str:
    """Text safe inside a CSS string in a <style> element (no quote, backslash or tag)."""
    return "".join(c for c in text if c not in '"\\<>\n')


def render_letter(letter: Letter) -> str:
    """The letter as one HTML page, ready to print on A4."""
    words = TEMPLATES[letter.template]
    footer = _css_text(
        f"{words['exercise']} {letter.exercise} · {words['position']} {letter.position} · "
        f"{words['number']} {letter.reference}"
    )
    template = _ENVIRONMENT.get_template("letter.html")
    context: dict[str, Any] = {"letter": letter, "t": words, "footer": footer}
    return template.render(context)


def render_pdf(letter: Letter) -> bytes:
    """The letter as a PDF, laid out by WeasyPrint from its HTML."""
    # WeasyPrint loads Pango and its fonts: a second or so, paid only by who prints.
    try:
        import weasyprint  # type: ignore[import-untyped]  # noqa: PLC0415 - see above
    except OSError as exc:
        # A machine without Pango (a fresh one, before `bash scripts/check`): say what to do.
        raise SimulatorError(
            f"PDF letters need the Pango library, which is missing ({exc}): install "
            "libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core (`bash scripts/check` does), "
            "or write HTML letters only with --format html"
        ) from None

    pdf: bytes = weasyprint.HTML(
        string=render_letter(letter), url_fetcher=_fetching_nothing(weasyprint)
    ).write_pdf()
    return pdf


def _fetching_nothing(weasyprint: Any) -> Any:
    """WeasyPrint's fetcher for a letter: nothing but `data:` URLs, wherever a URL points.

    The page is self-contained, and every field is escaped, so nothing in it asks for a
    resource; should a participant's words ever reach the markup, an image or a style
    naming `http://…` or `file:///etc/…` must not make the controller's machine fetch
    it (WeasyPrint's default fetcher would, local files included). WeasyPrint leaves
    out what it may not fetch, with a warning. (`URLFetcher` is WeasyPrint 68's, the
    release that also fixed CVE-2025-68616 in fetching: hence the pin.)
    """
    return weasyprint.URLFetcher(allowed_protocols=("data",))
