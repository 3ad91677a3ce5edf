"""The report as Markdown, for a ticket or a postmortem (`relconsole report`)."""

from __future__ import annotations

import jinja2

from relconsole.report.model import Report
from relconsole.report.text import FILTERS

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("relconsole.report", "templates"),
    autoescape=False,  # Markdown: cells are escaped by the `cell` filter instead
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)
_ENV.filters.update(FILTERS)


def render_markdown(report: Report) -> str:
    return _ENV.get_template("report.md.j2").render(r=report)
