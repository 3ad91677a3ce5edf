"""The placeholders of configured text, filled in one place for every layer.

`{{version}}` in a metric's query is what the Prometheus adapter sends; the gate detail
view shows the same text, so it must be filled in by the same code. A dashboard link may
also name `{{baseline}}`. Pure functions of strings: no provider, no front end.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from relconsole.model import MetricSpec, ReleasePlan

# Spaces are allowed inside the braces: `{{ version }}` is how many templates are written.
VERSION = re.compile(r"\{\{\s*version\s*\}\}")
BASELINE = re.compile(r"\{\{\s*baseline\s*\}\}")


def expand_query(template: str, version: str) -> str:
    """The query with `{{version}}` replaced, escaped for a PromQL double-quoted string."""
    escaped = version.replace("\\", "\\\\").replace('"', '\\"')
    return VERSION.sub(lambda _m: escaped, template)


def expand_url(template: str, version: str, baseline: str) -> str:
    """A dashboard link with the canary and baseline versions put in.

    The versions are percent-encoded: a `+build` or a space in a version would otherwise
    change what the dashboard is asked for.
    """
    text = VERSION.sub(lambda _m: quote(version, safe=""), template)
    return BASELINE.sub(lambda _m: quote(baseline, safe=""), text)


def release_dashboard(plan: ReleasePlan) -> str:
    """release.dashboard for this release's versions ('' when none is configured)."""
    if not plan.dashboard:
        return ""
    return expand_url(plan.dashboard, plan.canary, plan.baseline_version)


def metric_dashboard(plan: ReleasePlan, metric: MetricSpec) -> str:
    """metrics.<name>.dashboard for this release's versions ('' when none)."""
    if not metric.dashboard:
        return ""
    return expand_url(metric.dashboard, plan.canary, plan.baseline_version)


def queries_sent(plan: ReleasePlan, metric: MetricSpec) -> tuple[str, str]:
    """The metric's query as sent for the canary and for the baseline."""
    return (expand_query(metric.query, plan.canary),
            expand_query(metric.query, plan.baseline_version))


def dashboards(plan: ReleasePlan) -> list[tuple[str, str]]:
    """(what, link) of every dashboard configured: the release's, then each metric's."""
    found = [("release", release_dashboard(plan))]
    found += [(m.name, metric_dashboard(plan, m)) for m in plan.metrics]
    return [(name, url) for name, url in found if url]
