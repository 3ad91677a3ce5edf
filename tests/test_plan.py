"""`relconsole plan`: the deployment plan in the issue's Markdown structure, and as JSON.

Three releases of known risk (low, medium, high) on the simulator: every section is
there in order, the steps and thresholds are the config's, and the factor that sets the
level says why. The JSON carries the same content, and a bad owners: or changes: block
is one clear message with its line.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from relconsole.cli import main
from relconsole.config import load_config
from relconsole.plan import LiveFacts, build_plan, render_markdown
from relconsole.plan.render_md import HEADINGS
from tests.plan_servers import serve

BASE = """\
release:
  service: checkout-api
  version: 2.3.0
  environment: production
  steps:
    - {{weight: {first}, bake: 30s}}
    - {{weight: 60, bake: 2m}}
    - {{weight: 100}}
  flags: [checkout-new-pricing-release]
  owners:
    - {{name: Alice Chen, slack: '@alice', pager: payments-oncall}}
  stakeholders:
    - {{name: Customer support, email: support@example.com}}
{changes}
providers:
  metrics: {{type: sim, scenario: healthy}}
  traffic: {{type: sim}}
  flags: {{type: sim}}
versions: {{canary: 2.3.0, baseline: 2.2.1}}
metrics:
  error_rate: {{unit: ratio}}
  latency_p99: {{unit: seconds}}
gates:
  - {{metric: error_rate, max: 0.01, max_increase: 0.005, failure_limit: 2}}
  - {{metric: latency_p99, max_ratio: 1.3, failure_limit: 3}}
"""

LOW = BASE.format(first=1, changes="")
MEDIUM = BASE.format(first=1, changes="""\
  changes:
    infrastructure: [a Redis cache in front of pricing]
""")
HIGH = BASE.format(first=1, changes="""\
  changes:
    api:
      - {name: DELETE /v1/quote, breaking: true}
      - {name: POST /v2/quote}
""")


def write(tmp_path: Path, text: str, name: str = "release.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def plan_of(tmp_path: Path, text: str, *extra: str,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = write(tmp_path, text)
    code = main(["plan", "-c", str(path), "--state-dir", str(tmp_path / "state"), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def section(markdown: str, heading: str) -> list[str]:
    """The lines under one heading, up to the next one."""
    lines = markdown.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return [line for line in lines[start:end] if line.strip()]


@pytest.mark.parametrize(("text", "level", "factor", "because"), [
    (LOW, "Low", "Scope", "code only"),
    (MEDIUM, "Medium", "Scope", "infrastructure: a Redis cache in front of pricing"),
    (HIGH, "High", "Scope", "breaking API change: DELETE /v1/quote"),
], ids=["low", "medium", "high"])
def test_every_section_in_order_and_the_factor_that_sets_the_level_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, level: str, factor: str,
    because: str,
) -> None:
    code, out, err = plan_of(tmp_path, text, capsys=capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "## Deployment Plan: checkout-api 2.3.0"
    where = [lines.index(h) for h in HEADINGS]
    assert where == sorted(where), "sections out of order"
    risk = section(out, "### Risk Assessment")
    assert risk[0] == f"- Risk Level: {level}"
    assert risk[1].startswith("- Rollback Time: instant")
    # The simulator says how many requests per second each step exposes.
    assert re.match(r"- Blast Radius: 1 % \(≈[\d.]+ req/s\) → 60 % \(≈\d+ req/s\) → 100 % "
                    r"\(≈\d+ req/s\) of production traffic, at \d+ req/s now", risk[2]), risk[2]
    assert ("dependents: every consumer of DELETE /v1/quote" in risk[2]) == (level == "High")
    factors = {line.split(":")[0][2:]: line for line in risk[3:]}
    assert set(factors) == {"Scope", "Blast radius", "Reversibility", "Timing"}
    assert factors[factor].startswith(f"- {factor}: {level} — ")
    assert because in factors[factor]
    # No factor is above the level it explains.
    order = ["Low", "Medium", "High"]
    for line in factors.values():
        said = line.split(": ", 1)[1].split(" — ")[0]
        assert order.index(said) <= order.index(level), line


def test_a_large_first_step_is_a_high_blast_radius(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = plan_of(tmp_path, BASE.format(first=40, changes=""), capsys=capsys)
    assert code == 0
    risk = section(out, "### Risk Assessment")
    assert risk[0] == "- Risk Level: High"
    blast = next(line for line in risk if line.startswith("- Blast radius:"))
    assert "High — the first step exposes 40 % of production traffic" in blast


def test_no_owner_with_a_pager_raises_the_timing_factor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = LOW.replace("    - {name: Alice Chen, slack: '@alice', pager: payments-oncall}\n",
                       "    - {name: Alice Chen, slack: '@alice'}\n")
    code, out, _ = plan_of(tmp_path, text, capsys=capsys)
    assert code == 0
    risk = section(out, "### Risk Assessment")
    assert risk[0] == "- Risk Level: Medium"
    timing = next(line for line in risk if line.startswith("- Timing:"))
    assert "Medium" in timing and "no owner has a pager" in timing
    assert "no deployment window configured" in timing


def test_steps_checkpoints_and_rollback_triggers_are_the_configs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = plan_of(tmp_path, LOW, capsys=capsys)
    assert code == 0
    steps = section(out, "### Deployment Steps")
    numbered = [line for line in steps if re.match(r"\d+\. ", line)]
    assert [int(line.split(".")[0]) for line in numbered] == list(range(1, 7))
    assert numbered[0].startswith("1. Step 1: canary at 1 %, bake 30s — expected 30s")
    assert numbered[2].startswith("3. Step 2: canary at 60 %, bake 2m — expected 2m")
    assert numbered[4].startswith("5. Step 3: canary at 100 %")
    for checkpoint in (numbered[1], numbered[3]):
        assert "Validation checkpoint" in checkpoint
        assert "error_rate ≤1 % Δ≤0.5 %" in checkpoint
        assert "latency_p99 ×≤1.3" in checkpoint
    rollback = section(out, "### Rollback Procedure")
    assert rollback[0] == "1. Trigger conditions:"
    assert any("error_rate ≤1 % Δ≤0.5 % broken on 2 failing polls in a row" in line
               for line in rollback)
    assert any("latency_p99 ×≤1.3 broken on 3 failing polls in a row" in line
               for line in rollback)
    assert any("instance health" in line for line in rollback)
    monitoring = section(out, "### Monitoring")
    assert "- Key metric: error_rate (ratio, shown as %): judged on values" in monitoring
    assert any(line.startswith("- Alert threshold: latency_p99 ×≤1.3: trips after 3")
               for line in monitoring)


def test_clock_times_count_from_now(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, LOW), resolve_secrets=False)
    now = time.mktime((2026, 3, 2, 14, 0, 0, 0, 0, -1))
    plan = build_plan(cfg, LiveFacts(), now)
    assert [s.starts_in for s in plan.steps] == [0.0, 30.0, 150.0]
    text = render_markdown(plan)
    assert "expected 30s, 14:00–14:00" in text  # 30 s: within the same minute
    assert "expected 2m, 14:00–14:02" in text
    assert "about 14:02" in text


def test_flags_first_then_traffic_when_rollback_kills_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = LOW.replace("  flags: [checkout-new-pricing-release]\n",
                       "  flags: [checkout-new-pricing-release]\n"
                       "  rollback: {kill_flags: true}\n")
    code, out, _ = plan_of(tmp_path, text, capsys=capsys)
    assert code == 0
    rollback = section(out, "### Rollback Procedure")
    steps = rollback[rollback.index("2. Rollback steps:") + 1:]
    assert steps[0].strip().startswith("1. Kill the release's flags first")
    assert "checkout-new-pricing-release" in steps[0]
    assert steps[1].strip().startswith("2. Send all traffic back")
    flags = section(out, "### Flag Configuration")
    assert flags == ["- `checkout-new-pricing-release` (release): on, 25 %; planned: stays at "
                     "25 % through the steps (changed only by an operator: `%`, `k`); killed "
                     "first on rollback (rollback.kill_flags)"]


def test_dashboards_and_communication_come_from_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = LOW.replace("  flags: [checkout-new-pricing-release]\n",
                       "  flags: [checkout-new-pricing-release]\n"
                       "  dashboard: 'https://grafana.example.com/d/x?v={{version}}'\n")
    code, out, _ = plan_of(tmp_path, text, capsys=capsys)
    assert code == 0
    assert "- Dashboard (release): https://grafana.example.com/d/x?v=2.3.0" in out
    talk = section(out, "### Communication Plan")
    assert any(line.startswith("- Before the release: send this plan to Alice Chen "
                               "(slack @alice · pager payments-oncall), Customer support "
                               "(email support@example.com)") for line in talk)
    assert "- If a rollback fails: page payments-oncall" in talk


def _texts(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def test_json_has_the_same_content_as_the_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Generated within the same minute, the clock times agree too.
    code, md, _ = plan_of(tmp_path, HIGH, capsys=capsys)
    code_json, raw, _ = plan_of(tmp_path, HIGH, "--format", "json", capsys=capsys)
    assert code == code_json == 0
    doc = json.loads(raw)
    assert doc["risk"]["level"] == "High"
    assert [f["name"] for f in doc["risk"]["factors"]] == [
        "Scope", "Blast radius", "Reversibility", "Timing"]
    assert len(doc["steps"]) == 3 and doc["steps"][1]["weight"] == 60
    skip = {doc["generated_at"], doc["strategy"], doc["environment"]}
    missing = [t for t in _texts({k: v for k, v in doc.items() if k != "generated_at"})
               if t and t not in skip and t not in md
               and re.sub(r"\d\d:\d\d", "", t) == t]  # clock times may differ by a minute
    assert missing == []


def test_an_argo_rollout_that_cannot_be_reached_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Config
        clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
        users: [{name: u, user: {token: t}}]
        contexts: [{name: x, context: {cluster: c, user: u, namespace: payments}}]
        current-context: x
        """))
    text = f"""\
release:
  service: checkout-api
  version: 2.3.0
  environment: production
providers:
  traffic: {{type: argo-rollouts, rollout: checkout-api, namespace: payments,
            kubeconfig: {kubeconfig}, timeout: 1s}}
"""
    code, out, err = plan_of(tmp_path, text, capsys=capsys)
    assert code == 0, err
    steps = section(out, "### Deployment Steps")
    assert len(steps) == 1 and steps[0].startswith("steps: from the Rollout (not reachable: ")
    risk = section(out, "### Risk Assessment")
    assert risk[1].startswith("- Rollback Time: up to 1m: an Argo Rollouts abort")


@pytest.mark.parametrize(("block", "line", "key", "says"), [
    ("  owners:\n    - {name: Alice}\n", 7, "release.owners[0]", "has no way to be reached"),
    ("  owners:\n    - {name: Alice, slack: alice}\n", 7, "release.owners[0].slack",
     "neither a channel nor a handle"),
    ("  stakeholders:\n    - {name: Bob, email: bob}\n", 7, "release.stakeholders[0].email",
     "not an email address"),
    ("  owners:\n    - {name: Alice, phone: 555}\n", 7, "release.owners[0].phone", ""),
    ("  changes:\n    dependencies:\n      - {name: pricing}\n", 8,
     "release.changes.dependencies[0]", "needs exactly one health probe"),
    ("  changes:\n    dependencies:\n      - {name: pricing, http: 'ftp://x', version: 4.1}\n",
     8, "release.changes.dependencies[0].http", "must be an http:// or https:// link"),
    ("  changes:\n    dependencies:\n      - {name: pricing, promql: 'up == 1'}\n", 8,
     "release.changes.dependencies[0].promql", "providers.metrics is not type: prometheus"),
    ("  changes:\n    api:\n      - {breaking: true}\n", 8, "release.changes.api[0].name", ""),
    ("  changes:\n    infra: [x]\n", 7, "release.changes.infra", "Known keys here: api, "
     "infrastructure, dependencies"),
], ids=["no-reach", "slack", "email", "unknown-key", "no-probe", "probe-url", "promql-no-prom",
        "api-no-name", "misspelt"])
def test_bad_owners_or_changes_are_one_clear_message_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], block: str, line: int, key: str,
    says: str,
) -> None:
    text = ("release:\n  service: api\n  version: 1.0.0\n  environment: staging\n"
            "  steps: [{weight: 100}]\n" + block + "providers:\n  traffic: {type: sim}\n")
    code, out, err = plan_of(tmp_path, text, capsys=capsys)
    assert code == 2
    assert out == "" and "Traceback" not in err
    message = err.strip()
    assert "\n" not in message
    assert message.startswith(f"relconsole: {tmp_path / 'release.yaml'}:{line}: {key}: "), message
    assert says in message


PROMETHEUS = """\
release:
  service: checkout-api
  version: 2.3.0
  environment: production
  steps: [{{weight: 10, bake: 1m}}, {{weight: 100}}]
  owners: [{{name: Alice Chen, pager: payments-oncall}}]
providers:
  metrics: {{type: prometheus, url: '{url}'}}
  traffic: {{type: sim}}
versions: {{canary: 2.3.0, baseline: 2.2.1}}
metrics:
  error_rate:
    query: >-
      sum(rate(http_requests_total{{version="{{{{version}}}}",code=~"5.."}}[1m]))
      / sum(rate(http_requests_total{{version="{{{{version}}}}"}}[1m]))
    unit: ratio
gates:
  - {{metric: error_rate, max: 0.01}}
"""


@pytest.mark.parametrize(("peak", "level", "says"), [
    ("100", "High", "traffic 90 req/s is 90% of its usual peak 100 req/s"),
    ("400", "Medium", "traffic 90 req/s is 22% of its usual peak 400 req/s"),
], ids=["near-peak", "quiet"])
def test_prometheus_says_current_traffic_against_its_usual_peak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], peak: str, level: str, says: str
) -> None:
    def answer(query: str) -> str:
        if 'version="2.3.0"' in query:
            return ""  # the canary takes no traffic yet: no series
        return peak if query.startswith("max_over_time(") else "90"

    with serve() as server:
        server.promql = answer
        code, out, err = plan_of(tmp_path, PROMETHEUS.format(url=server.url), capsys=capsys)
        sent = server.queries
    assert code == 0, err
    # Requests per second from the counter the error rate's query divides by.
    assert 'sum(rate(http_requests_total{version="2.2.1"}[5m]))' in sent
    assert 'max_over_time(sum(rate(http_requests_total{version="2.2.1"}[5m]))[7d:1h])' in sent
    risk = section(out, "### Risk Assessment")
    assert risk[0] == f"- Risk Level: {level}"  # 10 % first step: Medium at least
    assert risk[2].startswith("- Blast Radius: 10 % (≈9 req/s) → 100 % (≈90 req/s) of "
                              "production traffic, at 90 req/s now")
    timing = next(line for line in risk if line.startswith("- Timing:"))
    assert says in timing
    assert timing.startswith(f"- Timing: {'High' if level == 'High' else 'Low'} — ")


def test_an_argo_rollout_gives_its_own_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fake_kube import FakeKube
    from tests.test_argo_provider import NS, TOKEN, deploy, rollout, write_kubeconfig

    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "HTTPS_PROXY", "HTTP_PROXY",
                "https_proxy", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    kube = FakeKube(token=TOKEN, user="alice", workloads=True)
    kube.start()
    try:
        deploy(kube, rollout(steps=[{"setWeight": 20}, {"pause": {"duration": "2m"}},
                                    {"setWeight": 50}, {"pause": {}}]), passes=3)
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url)
        text = f"""\
release:
  service: web
  version: "2"
  environment: production
providers:
  traffic: {{type: argo-rollouts, rollout: web, namespace: {NS}, kubeconfig: {kubeconfig}}}
"""
        code, out, err = plan_of(tmp_path, text, capsys=capsys)
    finally:
        kube.close()
    assert code == 0, err
    steps = section(out, "### Deployment Steps")
    numbered = [line for line in steps if re.match(r"\d+\. ", line)]
    assert len(numbered) == 8  # four Rollout steps, each with its checkpoint
    assert numbered[0].startswith("1. Rollout step 1: ")
    assert "20" in numbered[0]
    assert numbered[2].startswith("3. Rollout step 2: ") and "expected 2m" in numbered[2]
    assert "waits for a promote" in numbered[6]
    assert "only the Rollout's own analysis, if it has one, judges it" in numbered[1]
    assert steps[-1] == f"_steps: from rollout {NS}/web (the Rollout owns its plan)_"
    risk = section(out, "### Risk Assessment")
    assert risk[2] == ("- Blast Radius: 20 % → 50 % → 100 % of production traffic; requests "
                       "per second unknown (no metrics provider)")
