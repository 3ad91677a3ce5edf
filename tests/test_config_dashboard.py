"""Dashboard links (issue 10, item 15): `release.dashboard` and `metrics.<name>.dashboard`,
with {{version}} and {{baseline}} put in, checked as http(s) links, and shown where the
engineer looks: `relconsole status`, the journal's Markdown (the console's own views are
tested in tests/tui/test_on_call_tools.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from relconsole.config import ConfigError, load_config
from relconsole.placeholders import dashboards, queries_sent
from relconsole.providers.prometheus import render

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"
RELEASE_BOARD = "https://grafana.example.com/d/checkout?var-canary={{version}}&var-baseline={{baseline}}"
METRIC_BOARD = "https://grafana.example.com/d/checkout?viewPanel=2&var-version={{version}}"


def example_with(tmp_path: Path, release: str, metric: str) -> Path:
    """config.example.yaml with its two commented dashboard lines written as given."""
    text = EXAMPLE.read_text()
    text = text.replace(f"  # dashboard: '{RELEASE_BOARD}'", f"  dashboard: {release}", 1)
    text = text.replace(f"    # dashboard: '{METRIC_BOARD}'", f"    dashboard: {metric}", 1)
    path = tmp_path / "relconsole.yaml"
    path.write_text(text)
    return path


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_dashboards_get_both_versions_put_in(tmp_path: Path) -> None:
    cfg = load_config(example_with(tmp_path, f"'{RELEASE_BOARD}'", f"'{METRIC_BOARD}'"),
                      resolve_secrets=False)
    assert dashboards(cfg.plan) == [
        ("release", "https://grafana.example.com/d/checkout?var-canary=2.3.0&var-baseline=2.2.1"),
        ("error_rate", "https://grafana.example.com/d/checkout?viewPanel=2&var-version=2.3.0"),
    ]


def test_the_console_shows_the_query_the_prometheus_adapter_sends(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLE, resolve_secrets=False)
    metric = next(m for m in cfg.plan.metrics if m.name == "error_rate")
    assert queries_sent(cfg.plan, metric) == (render(metric.query, "2.3.0"),
                                             render(metric.query, "2.2.1"))
    assert 'version="2.3.0"' in queries_sent(cfg.plan, metric)[0]


@pytest.mark.parametrize(
    ("release", "metric", "key", "needle"),
    [
        ("grafana.example.com/d/x", f"'{METRIC_BOARD}'", "release.dashboard",
         "dashboard: grafana"),
        (f"'{RELEASE_BOARD}'", "'ftp://files.example.com/{{version}}'",
         "metrics.error_rate.dashboard", "dashboard: 'ftp:"),
        (f"'{RELEASE_BOARD}'", "'https://'", "metrics.error_rate.dashboard",
         "dashboard: 'https://'"),
        ("42", f"'{METRIC_BOARD}'", "release.dashboard", "dashboard: 42"),
    ],
)
def test_a_dashboard_that_is_not_an_http_link_is_one_clear_error_on_its_line(
    tmp_path: Path, release: str, metric: str, key: str, needle: str
) -> None:
    path = example_with(tmp_path, release, metric)
    with pytest.raises(ConfigError) as info:
        load_config(path, resolve_secrets=False)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_of(path, needle)}: {key}: must be "), message
    if key != "release.dashboard" or release != "42":
        assert "must be an http:// or https:// link" in message
        assert "e.g. dashboard: 'https://" in message


def test_check_reports_a_bad_dashboard_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    path = example_with(tmp_path, "'grafana/d/x'", f"'{METRIC_BOARD}'")
    result = subprocess.run([sys.executable, "-m", "relconsole", "check", "-c", str(path)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT,
                            env={**os.environ, "PYTHON_KEYRING_BACKEND":
                                 "keyring.backends.fail.Keyring"})
    assert result.returncode == 2
    assert f"{path}:{line_of(path, 'grafana/d/x')}: release.dashboard" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_and_the_journal_markdown_list_the_dashboards(tmp_path: Path) -> None:
    path = example_with(tmp_path, f"'{RELEASE_BOARD}'", f"'{METRIC_BOARD}'")
    state = tmp_path / "state"
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "relconsole", *args, "-c", str(path),
                               "--state-dir", str(state)], capture_output=True, text=True,
                              timeout=60, cwd=ROOT, env=env)

    assert run("advance").returncode == 0
    status = run("status")
    assert status.returncode == 0, status.stderr
    release = "https://grafana.example.com/d/checkout?var-canary=2.3.0&var-baseline=2.2.1"
    assert f"release dashboard: {release}" in status.stdout
    journal = run("journal")
    assert f"- release dashboard: <{release}>" in journal.stdout
    assert "- error_rate dashboard: <https://grafana.example.com/d/checkout?viewPanel=2" \
           "&var-version=2.3.0>" in journal.stdout
