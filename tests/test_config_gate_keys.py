"""The gate keys of the evidence judge and the health gate (issue 11), as a config
author meets them: each mistake is one message naming the file's line, what is wrong
and what to do; a right one is read into the plan as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from relconsole.config import ConfigError, load_config

HEAD = """\
release: {service: web, version: 1.2.0, environment: staging,
          steps: [{weight: 10, bake: 1m}, {weight: 100}]}
providers: {traffic: {type: sim}, metrics: {type: sim}}
versions: {canary: 1.2.0, baseline: 1.1.0}
metrics:
  error_rate:
    unit: ratio
    counts:
      events: 'reqs_total{v="{{version}}",code=~"5.."}'
      total: 'reqs_total{v="{{version}}"}'

  latency_p99:
    unit: seconds
    query: 'histogram_quantile(0.99, sum(rate(d_bucket{v="{{version}}"}[1m])) by (le))'
  orders:
    unit: ratio
    query: >-
      sum(rate(orders_total{v="{{version}}"}[1m]))
      / sum(rate(reqs_total{v="{{version}}"}[1m]))
gates:
"""


def load(tmp_path: Path, gate: str):
    path = tmp_path / "relconsole.yaml"
    path.write_text(HEAD + f"  - {gate}\n")
    return load_config(path, resolve_secrets=False)


def problem(tmp_path: Path, gate: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, gate)
    text = str(caught.value)
    # The gate is on the file's last line: the message names it.
    assert f"relconsole.yaml:{len(HEAD.splitlines()) + 1}:" in text, text
    return text


def test_the_new_keys_are_read_as_written(tmp_path: Path) -> None:
    gate = load(tmp_path, "{metric: error_rate, max_ratio: 1.5, alpha: 0.05}").plan.gates[0]
    assert (gate.max_ratio, gate.alpha) == (1.5, 0.05)
    business = load(tmp_path, "{metric: orders, min_ratio: 0.9, max_decrease: 0.002}")
    assert (business.plan.gates[0].min_ratio, business.plan.gates[0].max_decrease) == (0.9, 0.002)
    share = load(tmp_path, "{health: canary, min_up: 66%}").plan.gates[0]
    assert share.health == "canary" and share.min_up == pytest.approx(0.66) and share.min_up_share
    count = load(tmp_path, "{health: canary, min_up: 2, failure_limit: 2}").plan.gates[0]
    assert count.min_up == 2 and not count.min_up_share and count.failure_limit == 2


@pytest.mark.parametrize(
    ("gate", "says"),
    [
        ("{metric: error_rate, max_ratio: 1.5, alpha: 0.7}", "alpha"),
        ("{metric: error_rate, max_ratio: 1.5, alpha: 0}", "alpha"),
        ("{metric: error_rate, max: 0.01, min_up: 2}", "min_up"),
        ("{health: canary, metric: error_rate, min_up: 2}", "health"),
        ("{health: canary}", "min_up"),
        ("{health: canary, min_up: 2, alpha: 0.05}", "alpha"),
        ("{health: canary, min_up: 150%}", "min_up"),
    ],
)
def test_a_wrong_gate_gets_one_message_on_its_line(tmp_path: Path, gate: str, says: str) -> None:
    text = problem(tmp_path, gate)
    assert says in text, text
    assert "Traceback" not in text


def test_alpha_on_a_gate_judged_on_values_is_not_silently_ignored(tmp_path: Path) -> None:
    text = problem(tmp_path, "{metric: latency_p99, max: 0.5, alpha: 0.05}")
    assert "alpha is for gates judged on counts" in text
    assert "'latency_p99' is judged on values (histogram_quantile" in text
    # The same alpha on a metric whose query is a ratio of counters is used.
    assert load(tmp_path, "{metric: orders, min_ratio: 0.9, alpha: 0.05}").plan.gates[0].alpha \
        == 0.05
