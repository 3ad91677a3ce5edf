"""`relconsole report`: what happened in a release, from its journal and metric series.

`model` builds the report (pure), `series` fetches a past window from the metrics
provider, and `render_md`, `render_html`, `render_json` write it out.
"""

from __future__ import annotations

from relconsole.report.model import Report, build_report, window
from relconsole.report.render_html import render_html
from relconsole.report.render_json import render_json, report_dict
from relconsole.report.render_md import render_markdown
from relconsole.report.series import fetch_series

FORMATS = ("md", "html", "json")


def render(report: Report, fmt: str) -> str:
    if fmt == "html":
        return render_html(report)
    if fmt == "json":
        return render_json(report)
    return render_markdown(report)


__all__ = [
    "FORMATS",
    "Report",
    "build_report",
    "fetch_series",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
    "report_dict",
    "window",
]
