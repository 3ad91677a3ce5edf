"""Mistakes `relconsole check` used to pass without a word (issue 10, item 17).

Each file here was accepted before and would have misled the console or the gates: a
canary version the screen does not show, an error rate diluted by the stable traffic, a
first step that sends no traffic, an adapter setting found only after "config ok".
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from relconsole.config import ConfigError, load_config
from relconsole.config.queries import check_query

BASE = """\
release:
  service: checkout
  version: 2.3.0
  environment: staging
  steps:
    - {weight: 1, bake: 1m}
    - {weight: 100}
providers:
  traffic: {type: sim}
  metrics: {type: prometheus, url: "http://127.0.0.1:9"}
metrics:
  error_rate:
    query: >-
      sum(rate(reqs{version="{{version}}",code=~"5.."}[1m]))
      / sum(rate(reqs{version="{{version}}"}[1m]))
gates:
  - {metric: error_rate, max: 0.01}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relconsole", "check", "-c", str(path)],
        capture_output=True, text=True, timeout=60,
    )


def load_problem(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, resolve_secrets=False)
    return info.value


def test_the_base_file_is_fine(tmp_path: Path) -> None:
    load_config(write(tmp_path, BASE), resolve_secrets=False)


def test_a_canary_version_other_than_the_release_version(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "versions: {canary: 2.4.0, baseline: 2.2.1}\n")
    err = load_problem(path)
    assert err.key == "versions.canary" and err.line == 18
    assert "2.4.0" in str(err) and "2.3.0" in str(err)


def test_version_only_in_the_numerator_is_a_diluted_rate(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace('/ sum(rate(reqs{version="{{version}}"}[1m]))',
                                        "/ sum(rate(reqs[1m]))"))
    err = load_problem(path)
    assert err.key == "metrics.error_rate.query" and err.line == 13
    assert "only in the numerator" in str(err)


def test_a_query_that_is_not_promql(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace('"5.."}[1m]))', '"5.."}[1m)', 1))
    err = load_problem(path)
    assert err.key == "metrics.error_rate.query" and "not valid PromQL" in str(err)


def test_the_simulator_does_not_read_queries(tmp_path: Path) -> None:
    text = BASE.replace('{type: prometheus, url: "http://127.0.0.1:9"}', "{type: sim}")
    load_config(write(tmp_path, text.replace("/ sum(rate(reqs{version=\"{{version}}\"}[1m]))",
                                             "/ sum(rate(reqs[1m]))")),
                resolve_secrets=False)


def test_a_first_step_of_no_traffic(tmp_path: Path) -> None:
    err = load_problem(write(tmp_path, BASE.replace("{weight: 1, bake: 1m}",
                                                    "{weight: 0, bake: 1m}")))
    assert err.key == "release.steps[0].weight" and err.line == 6
    assert "no traffic" in str(err)


def test_an_adapter_setting_fails_before_config_ok_is_printed(tmp_path: Path) -> None:
    text = BASE.replace("traffic: {type: sim}", "traffic: {type: haproxy, backend: app}")
    result = check(write(tmp_path, text))
    assert result.returncode == 2, result
    assert "config ok" not in result.stdout
    assert "Traceback" not in result.stderr
    assert "providers.traffic" in result.stderr and "release.yaml:9" in result.stderr


def test_a_misspelt_adapter_type_gets_a_suggestion(tmp_path: Path) -> None:
    result = check(write(tmp_path, BASE.replace("traffic: {type: sim}",
                                                "traffic: {type: haproxxy}")))
    assert result.returncode == 2
    assert "config ok" not in result.stdout
    assert "did you mean 'haproxy'" in result.stderr.lower()


@pytest.mark.parametrize("query", [
    'sum(rate(r{version="{{version}}"}[1m])) / 100',
    'histogram_quantile(0.99, sum by (le) (rate(b{version="{{version}}"}[1m])))',
    '(sum(rate(e{version="{{version}}"}[5m])) / sum(rate(r{version="{{version}}"}[5m])))',
])
def test_well_formed_queries_pass(query: str) -> None:
    assert check_query(query) is None


def test_a_diluted_ratio_inside_an_expression_is_found() -> None:
    found = check_query('100 * (sum(e{version="{{version}}"}) / sum(r))')
    assert found is not None and "numerator" in found.problem


def test_a_metrics_source_where_nothing_reads_is_not_ticked(tmp_path: Path) -> None:
    """Prometheus refusing every query used to print ✓ beside 'no usable value'."""
    result = check(write(tmp_path, BASE))  # port 9: nothing listens there
    assert result.returncode == 1, result
    assert "✗ metrics (prometheus)" in result.stdout
    assert "✓ traffic (sim)" in result.stdout
