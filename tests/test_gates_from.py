"""`gates_from:` — gates imported from an Argo AnalysisTemplate, and `release.steps` beside
a Rollout that owns its plan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from relconsole.assembly import plan_disagreement
from relconsole.config import ConfigError, load_config
from relconsole.config.errors import ConfigProblems
from relconsole.model import ControllerState, ControllerStep, Step, TrafficState

TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: checkout-health
spec:
  args:
    - name: canary-hash
  metrics:
    - name: success-rate
      interval: 1m
      successCondition: result[0] >= 0.99
      provider:
        prometheus:
          address: http://prometheus.monitoring:9090
          query: |
            sum(rate(http_requests_total{rollouts_pod_template_hash="{{args.canary-hash}}",code!~"5.."}[1m]))
            / sum(rate(http_requests_total{rollouts_pod_template_hash="{{args.canary-hash}}"}[1m]))
    - name: p99
      interval: 1m
      failureCondition: result[0] > 0.5
      provider:
        prometheus:
          address: http://prometheus.monitoring:9090
          query: >-
            histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{
            rollouts_pod_template_hash="{{args.canary-hash}}"}[1m])))
"""

CONFIG = """\
release:
  service: checkout-api
  version: 2.4.0
  environment: production
providers:
  traffic: {{type: argo-rollouts, rollout: checkout-api, namespace: payments}}
  metrics: {{type: prometheus, url: "http://127.0.0.1:9"}}
{extra}
"""


def write(folder: Path, extra: str, template: str = TEMPLATE) -> Path:
    (folder / "checkout-health.yaml").write_text(template)
    path = folder / "rollout.yaml"
    path.write_text(CONFIG.format(extra=extra))
    return path


def test_a_template_file_becomes_gates_judged_on_the_canary_alone(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """\
gates_from:
  file: checkout-health.yaml
  args: {canary-hash: 6f9c8d7b}
"""), resolve_secrets=False)
    assert cfg.plan.steps == ()  # argo-rollouts: the Rollout's own steps
    by_name = {m.name: m for m in cfg.plan.metrics}
    assert set(by_name) == {"success-rate", "p99"}
    assert 'rollouts_pod_template_hash="6f9c8d7b"' in by_name["success-rate"].query
    # The template's query selects the canary itself: no {{version}}, no baseline.
    assert by_name["success-rate"].canary_only and by_name["p99"].canary_only
    gates = {g.metric: g for g in cfg.plan.gates}
    assert gates["success-rate"].min == 0.99 and gates["success-rate"].max is None
    assert gates["p99"].max == 0.5
    assert cfg.gates_from is None  # nothing left to read from the cluster


def test_an_expression_relconsole_cannot_judge_is_refused_naming_it(tmp_path: Path) -> None:
    bad = TEMPLATE.replace("successCondition: result[0] >= 0.99",
                           "successCondition: result[0] >= 0.99 && asInt(result[1]) > 2")
    path = write(tmp_path, "gates_from: {file: checkout-health.yaml, args: {canary-hash: x}}",
                 template=bad)
    with pytest.raises(ConfigProblems) as caught:
        load_config(path, resolve_secrets=False, collect=True)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "asInt(result[1]) > 2" in text
    assert "rollout.yaml" in text and "gates_from.file" in text
    line = next(p.line for p in caught.value.problems)
    assert line == 8  # the gates_from line of the config


def test_gates_from_needs_exactly_one_source_and_prometheus(tmp_path: Path) -> None:
    path = write(tmp_path, "gates_from: {file: checkout-health.yaml, analysis_template: x}")
    with pytest.raises(ConfigError, match="exactly one of analysis_template"):
        load_config(path, resolve_secrets=False)
    (tmp_path / "sim.yaml").write_text(CONFIG.format(extra="gates_from: {file: x.yaml}")
                                       .replace("type: prometheus, url: \"http://127.0.0.1:9\"",
                                                "type: sim"))
    with pytest.raises(ConfigError, match="not type: prometheus"):
        load_config(tmp_path / "sim.yaml", resolve_secrets=False)


def test_a_cluster_template_needs_the_argo_rollouts_provider(tmp_path: Path) -> None:
    text = CONFIG.format(extra="gates_from: {analysis_template: checkout-health}").replace(
        "{type: argo-rollouts, rollout: checkout-api, namespace: payments}", "{type: sim}")
    (tmp_path / "c.yaml").write_text(text.replace("  environment: production",
                                                  "  environment: production\n"
                                                  "  steps: [{weight: 10}, {weight: 100}]"))
    with pytest.raises(ConfigError, match="not type: argo-rollouts"):
        load_config(tmp_path / "c.yaml", resolve_secrets=False)


def test_a_missing_template_file_is_one_clear_message(tmp_path: Path) -> None:
    path = write(tmp_path, "gates_from: {file: nowhere.yaml}")
    with pytest.raises(ConfigError) as caught:
        load_config(path, resolve_secrets=False)
    assert "nowhere.yaml: cannot be read" in str(caught.value)


def test_steps_are_required_unless_the_rollout_owns_them(tmp_path: Path) -> None:
    text = CONFIG.format(extra="").replace(
        "{type: argo-rollouts, rollout: checkout-api, namespace: payments}", "{type: sim}")
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"no release\.steps"):
        load_config(tmp_path / "c.yaml", resolve_secrets=False)


def _read(*weights: int) -> TrafficState:
    plan = tuple(ControllerStep(f"set weight {w}%", w) for w in weights)
    return TrafficState(0, (), ControllerState(
        system="Argo Rollouts", resource="rollout payments/checkout-api", phase="Paused",
        message="CanaryPauseStep", step=0, steps=len(plan), set_weight=0, actual_weight=0,
        plan=plan))


def test_release_steps_that_disagree_with_the_rollout_are_named() -> None:
    ours = (Step(10), Step(50), Step(100))
    assert plan_disagreement(ours, _read(10, 10, 50, 50)) is None  # pauses repeat weights
    problem = plan_disagreement(ours, _read(20, 20, 60))
    assert problem == ("release.steps (10%, 50%, 100%) disagree with the plan of rollout "
                       "payments/checkout-api (20%, 60%, 100%)")


def test_check_prints_every_template_problem_and_exits_2(tmp_path: Path) -> None:
    bad = TEMPLATE.replace("failureCondition: result[0] > 0.5",
                           "failureCondition: result[0] > 0.5 || result[1] > 1")
    path = write(tmp_path, "gates_from: {file: checkout-health.yaml, args: {canary-hash: x}}",
                 template=bad)
    done = subprocess.run([sys.executable, "-m", "relconsole", "check", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "result[1] > 1" in done.stderr
