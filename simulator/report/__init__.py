"""The after-action report of a run: data folded from its log, as HTML, Markdown and JSON."""

from simulator.report.builder import assemble, build_report, read_scenario
from simulator.report.charts import response_chart
from simulator.report.files import (
    ReportFiles,
    lettered_cases,
    read_report,
    read_report_letters,
    render_json,
    save_report,
)
from simulator.report.formatting import DEFAULT_CHARTED_CASES
from simulator.report.html_page import render_html
from simulator.report.markdown_page import render_markdown
from simulator.report.model import REPORT_FORMAT, LogIntegrity, ReportData
from simulator.report.sequence import sequence_chart

__all__ = [
    "DEFAULT_CHARTED_CASES",
    "REPORT_FORMAT",
    "LogIntegrity",
    "ReportData",
    "ReportFiles",
    "assemble",
    "build_report",
    "lettered_cases",
    "read_report",
    "read_report_letters",
    "read_scenario",
    "render_html",
    "render_json",
    "render_markdown",
    "response_chart",
    "save_report",
    "sequence_chart",
]
