"""Argo Rollouts AnalysisTemplates as relconsole gates (`relconsole.config.analysis_template`).

The templates marked "re-typed from" are Argo's own documented examples
(github.com/argoproj/argo-rollouts, read at commit 9f8d111d), written out again as the
dicts the Kubernetes API returns; their limits are asserted exactly.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relconsole.config.analysis_template import (
    ConditionError,
    TemplateError,
    argo_phase,
    evaluate,
    gates_from_template,
    parse_condition,
)
from relconsole.engine.gates import judge
from relconsole.model import MetricPair, Reading, Verdict

PROPERTY = settings(max_examples=200, deadline=None, database=None)
# The helpers' queries select the version by args.v, relconsole's own {{version}} by default.
V_ARG = [{"name": "v", "value": "{{version}}"}]

ISTIO_QUERY = (
    'sum(irate(\n'
    '  istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",'
    'response_code!~"5.*"}[5m]\n'
    ')) /\n'
    'sum(irate(\n'
    '  istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}"}[5m]\n'
    '))\n'
)


def template(*metrics: dict[str, Any], args: list[dict[str, Any]] | None = None,
             name: str = "t", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"args": V_ARG if args is None else args, "metrics": list(metrics), **spec},
    }


def prom_metric(name: str = "m", query: str = 'sum(up{version="{{args.v}}"})',
                **fields: Any) -> dict[str, Any]:
    return {"name": name, "provider": {"prometheus": {"address": "http://p:9090",
                                                       "query": query}}, **fields}


def one(condition: str | None = None, failure: str | None = None,
        **fields: Any) -> tuple[float | None, float | None]:
    """(min, max) of the gate imported from one metric with these conditions."""
    if condition is not None:
        fields["successCondition"] = condition
    if failure is not None:
        fields["failureCondition"] = failure
    imported = gates_from_template(template(prom_metric(**fields)),
                                   args={"v": "{{version}}"})
    gate = imported.gates[0]
    return gate.min, gate.max


def problems(tpl: dict[str, Any], args: dict[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(TemplateError) as caught:
        gates_from_template(tpl, args=args)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def below(x: float) -> float:
    return math.nextafter(x, -math.inf)


def above(x: float) -> float:
    return math.nextafter(x, math.inf)


# ------------------------------------------------------------------ Argo's own examples


def test_docs_prometheus_success_rate() -> None:
    # Re-typed from docs/analysis/prometheus.md, the first example (AnalysisTemplate
    # success-rate, Istio's istio_requests_total, headers X-Scope-OrgID).
    tpl = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate"},
        "spec": {
            "args": [{"name": "service-name"}],
            "metrics": [{
                "name": "success-rate",
                "interval": "5m",
                "successCondition": "result[0] >= 0.95",
                "failureLimit": 3,
                "provider": {"prometheus": {
                    "address": "http://prometheus.example.com:9090",
                    "timeout": 40,
                    "headers": [{"key": "X-Scope-OrgID", "value": "tenant_a"}],
                    "query": ISTIO_QUERY,
                }},
            }],
        },
    }
    imported = gates_from_template(
        tpl, args={"service-name": "guestbook-svc.default.svc.cluster.local"})
    assert imported.template == "success-rate"
    assert imported.kind == "AnalysisTemplate"
    (metric,), (gate,), (detail,) = imported.metrics, imported.gates, imported.details
    assert metric.name == gate.metric == "success-rate"
    assert metric.query == ISTIO_QUERY.strip().replace(
        "{{args.service-name}}", "guestbook-svc.default.svc.cluster.local")
    assert metric.counts is None and "Argo" in metric.values_why
    assert (gate.min, gate.max) == (0.95, None)
    assert gate.max_increase is gate.max_ratio is None
    assert gate.failure_limit == 4  # Argo fails on failed (4) > failureLimit (3)
    assert gate.inconclusive_limit == 5  # consecutiveErrorLimit 4 (default) + 1
    assert detail.interval == "5m" and detail.interval_seconds == 300
    assert detail.count is None and detail.effective_count is None
    assert (detail.failure_limit, detail.inconclusive_limit,
            detail.consecutive_error_limit) == (3, 0, 4)
    assert detail.address == "http://prometheus.example.com:9090"
    assert detail.query_args == ("service-name",)
    assert not detail.versioned
    words = " ".join(detail.mapping)
    assert "failureLimit 3 → failure_limit 4" in words
    assert "in a row" in words and "over the whole run" in words
    assert "consecutiveErrorLimit 4 → inconclusive_limit 5" in words
    assert "args.service-name" in words and "same series" in words
    assert "headers, timeout not imported" in words


def test_examples_appmesh_success_rate() -> None:
    # Re-typed from examples/appmesh/canary-rollout.yaml (AnalysisTemplate success-rate,
    # namespace argo-examples), the only Prometheus template under examples/.
    query = (
        'sum(irate(envoy_cluster_upstream_rq_xx{app="wrk-tester",envoy_cluster_name='
        '"{{args.envoy_cluster_name}}",envoy_response_code_class!~"5.*"}[5m])) /\n'
        'sum(irate(envoy_cluster_upstream_rq_xx{app="wrk-tester",envoy_cluster_name='
        '"{{args.envoy_cluster_name}}"}[5m]))\n'
    )
    tpl = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate", "namespace": "argo-examples"},
        "spec": {
            "args": [{"name": "envoy_cluster_name"}],
            "metrics": [{
                "name": "success-rate",
                "interval": "5m",
                "successCondition": "result[0] >= 0.99",
                "failureLimit": 3,
                "provider": {"prometheus": {
                    "address": "http://appmesh-prometheus.appmesh-system:9090",
                    "query": query,
                }},
            }],
        },
    }
    imported = gates_from_template(tpl, args={"envoy_cluster_name": "cg-my-app-canary"})
    gate = imported.gates[0]
    assert (gate.min, gate.max, gate.failure_limit, gate.inconclusive_limit) == (
        0.99, None, 4, 5)
    assert 'envoy_cluster_name="cg-my-app-canary"' in imported.metrics[0].query
    assert imported.details[0].query_args == ("envoy_cluster_name",)


def test_docs_inline_analysis_single_measurement() -> None:
    # Re-typed from docs/features/analysis.md, "Inline Analysis": no interval, so one
    # measurement; the arg prometheus-port has a default (written unquoted in the docs).
    tpl = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "success-rate"},
        "spec": {
            "args": [{"name": "service-name"}, {"name": "prometheus-port", "value": 9090}],
            "metrics": [{
                "name": "success-rate",
                "successCondition": "result[0] >= 0.95",
                "provider": {"prometheus": {
                    "address": "http://prometheus.example.com:{{args.prometheus-port}}",
                    "query": ISTIO_QUERY,
                }},
            }],
        },
    }
    imported = gates_from_template(tpl, args={"service-name": "guestbook-svc"})
    gate, detail = imported.gates[0], imported.details[0]
    assert (gate.min, gate.max, gate.failure_limit, gate.inconclusive_limit) == (
        0.95, None, 1, 5)
    assert detail.address == "http://prometheus.example.com:9090"
    assert detail.interval is None and detail.effective_count == 1
    assert "failureLimit 0 → failure_limit 1" in " ".join(detail.mapping)


def test_docs_count_and_interval() -> None:
    # Re-typed from docs/features/analysis.md: "interval: 60s, count: 5".
    imported = gates_from_template(template(prom_metric(
        "success-rate", successCondition="result[0] >= 0.95", interval="60s", count=5)),
        args={"v": "x"})
    detail = imported.details[0]
    assert (detail.interval_seconds, detail.count, detail.effective_count) == (60, 5, 5)
    assert imported.gates[0].min == 0.95
    assert "Argo takes 5 measurement(s)" in " ".join(detail.mapping)


def test_docs_total_errors_failure_condition() -> None:
    # Re-typed from docs/features/analysis.md, "Failure Conditions and Failure Limit".
    query = ('sum(irate(\n  istio_requests_total{reporter="source",destination_service=~'
             '"{{args.service-name}}",response_code=~"5.*"}[5m]\n))\n')
    tpl = template({
        "name": "total-errors",
        "interval": "5m",
        "failureCondition": "result[0] >= 10",
        "failureLimit": 3,
        "provider": {"prometheus": {"address": "http://prometheus.example.com:9090",
                                    "query": query}},
    }, args=[{"name": "service-name"}])
    imported = gates_from_template(tpl, args={"service-name": "svc"})
    gate = imported.gates[0]
    # Argo fails 10 itself; relconsole's max is inclusive, so max is the float below 10.
    assert gate.min is None and gate.max == below(10.0) == 9.999999999999998
    assert gate.failure_limit == 4
    words = " ".join(imported.details[0].mapping)
    assert "Argo fails 10 itself" in words


def test_docs_inconclusive_band_imports_as_a_band() -> None:
    # Re-typed from docs/features/analysis.md, "Inconclusive Runs": at or above 0.90 it
    # passes, below 0.50 it fails, and in between Argo calls it Inconclusive and pauses.
    imported = gates_from_template(template(prom_metric(
        "success-rate", successCondition="result[0] >= 0.90",
        failureCondition="result[0] < 0.50", inconclusiveLimit=2)), args={"v": "x"})
    (gate,), (detail,) = imported.gates, imported.details
    assert (gate.min, gate.max) == (0.90, None)
    assert (gate.inconclusive_min, gate.inconclusive_max) == (0.50, None)
    # Argo pauses on the third Inconclusive measurement: relconsole no later.
    assert gate.inconclusive_limit == 3
    words = " ".join(detail.mapping)
    assert "Between 0.5 and min 0.9 neither condition holds" in words
    assert "fails only below 0.5" in words
    # What the gate then says of each value, as Argo would judge it.
    from relconsole.engine.gates import judge
    from relconsole.model import MetricPair, Reading, Verdict

    def verdict(v: float) -> Verdict:
        pair = MetricPair(canary=Reading(v, 0.0), baseline=Reading(None, 0.0, "n/a"))
        return judge(gate, pair, now=0.0, stale_after=60.0)[0]

    assert [verdict(v) for v in (0.95, 0.90, 0.7, 0.5, 0.49)] == [
        Verdict.PASS, Verdict.PASS, Verdict.INCONCLUSIVE, Verdict.INCONCLUSIVE, Verdict.FAIL]


def test_both_conditions_holding_is_refused() -> None:
    (message,) = problems(template(prom_metric(
        "success-rate", successCondition="result[0] >= 0.50",
        failureCondition="result[0] < 0.90")), args={"v": "x"})
    assert "both hold" in message and "failureCondition wins" in message


def test_a_band_on_each_side_imports() -> None:
    # Passing 0.9..1, failing below 0.5, Inconclusive between and above 1 (Argo's phases).
    (gate,) = gates_from_template(template(prom_metric(
        "x", successCondition="result[0] >= 0.9 && result[0] <= 1",
        failureCondition="result[0] < 0.5")), args={"v": "x"}).gates
    assert (gate.inconclusive_min, gate.min, gate.max, gate.inconclusive_max) == (
        0.5, 0.9, 1.0, math.inf)


def test_an_inconclusive_value_beyond_a_failing_one_is_refused() -> None:
    (message,) = problems(template(prom_metric(
        "x", successCondition="result[0] >= 0.9",
        failureCondition="result[0] < 0.5 || result[0] > 0.6 && result[0] < 0.9")),
        args={"v": "x"})
    assert "Inconclusive on both sides of a failing range" in message


def test_docs_nan_examples() -> None:
    # Re-typed from docs/features/analysis.md, "NaN and Infinity": a scalar `result`.
    lo, hi = one("isNaN(result) || result >= 0.95")
    assert (lo, hi) == (0.95, None)
    both = gates_from_template(template(prom_metric(
        successCondition="result >= 0.95", failureCondition="result < 0.95")),
        args={"v": "x"})
    # Argo calls NaN Inconclusive here (both false) and pauses on the first, as
    # inconclusiveLimit is 0: relconsole must pause no later.
    assert (both.gates[0].min, both.gates[0].inconclusive_limit) == (0.95, 1)
    assert "Argo calls NaN Inconclusive" in " ".join(both.details[0].mapping)
    alone = gates_from_template(template(prom_metric(successCondition="result >= 0.95")),
                                args={"v": "x"})
    assert alone.gates[0].inconclusive_limit == 5
    assert "Argo counts NaN as a failure" in " ".join(alone.details[0].mapping)


def test_docs_empty_array_examples() -> None:
    # Re-typed from docs/features/analysis.md, "Empty array".
    passes_empty = gates_from_template(template(prom_metric(
        successCondition="len(result) == 0 || result[0] >= 0.95")), args={"v": "x"})
    fails_empty = gates_from_template(template(prom_metric(
        successCondition="len(result) > 0 && result[0] >= 0.95")), args={"v": "x"})
    assert passes_empty.gates[0].min == fails_empty.gates[0].min == 0.95
    assert "Argo passes an empty result; relconsole never does" in " ".join(
        passes_empty.details[0].mapping)
    assert "Argo counts an empty result as a failure" in " ".join(
        fails_empty.details[0].mapping)


def test_docs_range_query_is_refused_but_its_condition_maps() -> None:
    # Re-typed from docs/analysis/prometheus.md, "Range queries".
    tpl = template({
        "name": "success-rate",
        "successCondition": "all(result, # < 1000)",
        "failureLimit": 3,
        "provider": {"prometheus": {
            "rangeQuery": {"start": 'now() - duration("{{args.lookback-duration}}")',
                           "end": "now()", "step": "1m"},
            "address": "http://prometheus.example.com:9090",
            "query": 'http_latency_ms{service="{{args.service-name}}"}',
        }},
    }, args=[{"name": "service-name"}, {"name": "lookback-duration", "value": "5m"}])
    ranged, never = problems(tpl, args={"service-name": "svc"})
    assert "metric 'success-rate': provider.prometheus.rangeQuery" in ranged
    assert "instant queries" in ranged and "result[0]" in ranged
    # With no interval Argo takes one measurement, and failureLimit 3 tolerates it
    # failing: as documented, this metric can never fail the analysis.
    assert "Argo can never fail this metric" in never
    # The same condition on an instant query: one series, so exactly "< 1000".
    assert one("all(result, # < 1000)") == (None, below(1000.0))
    assert one("all(result, {# <= 1000})") == (None, 1000.0)


def test_docs_dry_run_is_refused() -> None:
    # Re-typed from docs/features/analysis.md, "Dry-Run Mode" (queries shortened).
    def errors(status: str) -> dict[str, Any]:
        return {"name": f"total-{status}xx-errors", "interval": "5m",
                "failureCondition": "result[0] >= 10", "failureLimit": 3,
                "provider": {"prometheus": {
                    "address": "http://prometheus.example.com:9090",
                    "query": f'sum(irate(istio_requests_total{{response_code=~"{status}.*"}}'
                             '[5m]))'}}}

    tpl = template(errors("5"), errors("4"), dryRun=[{"metricName": "total-5xx-errors"}])
    (message,) = problems(tpl)
    assert "metric 'total-5xx-errors': dryRun" in message
    assert "Take it out of spec.dryRun" in message
    every = template(errors("5"), errors("4"), dryRun=[{"metricName": ".*"}])
    assert len(problems(every)) == 2


def test_cluster_analysis_template_imports() -> None:
    tpl = template(prom_metric(successCondition="result[0] <= 0.01"))
    tpl["kind"] = "ClusterAnalysisTemplate"
    imported = gates_from_template(tpl, args={"v": "{{version}}"})
    assert imported.kind == "ClusterAnalysisTemplate"
    assert imported.gates[0].max == 0.01


# ------------------------------------------------------------------ expression forms


@pytest.mark.parametrize(("success", "failure", "expected"), [
    ("result[0] <= 0.01", None, (None, 0.01)),
    (None, "result[0] > 0.01", (None, 0.01)),
    ("result[0] <= 0.01", "result[0] > 0.01", (None, 0.01)),
    ("result[0] < 0.01", None, (None, below(0.01))),
    (None, "result[0] >= 0.01", (None, below(0.01))),
    ("result[0] >= 0.95", None, (0.95, None)),
    ("result[0] > 0.95", None, (above(0.95), None)),
    (None, "result[0] < 0.95", (0.95, None)),
    ("0.01 >= result[0]", None, (None, 0.01)),
    ("result[0] == 0", None, (0.0, 0.0)),
    (None, "result[0] != 0", (0.0, 0.0)),
    ("result[0] >= 0.5 && result[0] <= 1", None, (0.5, 1.0)),
    ("result[0] >= -1.5 && result[0] <= 1e-3", None, (-1.5, 0.001)),
    (None, "result[0] < 0.001 || result[0] > 0.01", (0.001, 0.01)),
    ("!(result[0] > 0.01)", None, (None, 0.01)),
    ("not (result[0] > 0.01)", None, (None, 0.01)),
    ("result[0] <= 0.01 and result[0] >= 0", None, (0.0, 0.01)),
    ("(result[0] <= 0.01)", None, (None, 0.01)),
    ("len(result) == 0 || result[0] <= 0.01", None, (None, 0.01)),
    ("len(result) > 0 && result[0] <= 0.01", None, (None, 0.01)),
    ("isNaN(result[0]) || result[0] <= 0.01", None, (None, 0.01)),
    ("!isNaN(result[0]) && result[0] <= 0.01", None, (None, 0.01)),
    (None, "isNaN(result[0]) || result[0] > 0.01", (None, 0.01)),
    ("all(result, # <= 0.01)", None, (None, 0.01)),
    ("all(result, {# >= 0.9})", None, (0.9, None)),
    ("result <= 0.01", None, (None, 0.01)),
    ("result[0] <= 0.01 || result[0] <= 0.02", None, (None, 0.02)),
    ("result[0] >= 0.5 && result[0] >= 0.7", None, (0.7, None)),
])
def test_every_supported_form(success: str | None, failure: str | None,
                              expected: tuple[float | None, float | None]) -> None:
    assert one(success, failure) == expected


def test_isnan_and_len_only_decide_what_relconsole_calls_inconclusive() -> None:
    # The guards change nothing for a number; they decide NaN and no data, which
    # relconsole never judges (safety rule 1).
    guarded = parse_condition("len(result) == 0 || result[0] <= 0.01")
    bare = parse_condition("result[0] <= 0.01")
    assert argo_phase(guarded, None, []) == "Successful"
    assert argo_phase(bare, None, []) == "Error"
    assert argo_phase(bare, None, [math.nan]) == "Failed"
    assert argo_phase(None, bare, [math.nan]) == "Successful"
    for value in (0.0, 0.01, 0.02):
        assert argo_phase(guarded, None, [value]) == argo_phase(bare, None, [value])


def test_evaluate_follows_expr_lang() -> None:
    assert evaluate(parse_condition("result[0] != result[0]").tree, [math.nan]) is True
    assert evaluate(parse_condition("len(result) == 2").tree, [1.0, 2.0]) is True
    assert evaluate(parse_condition("all(result, # < 3)").tree, [1.0, 4.0]) is False
    # || short-circuits, so result[0] of an empty list is never read.
    assert evaluate(parse_condition("len(result) == 0 || result[0] > 1").tree, []) is True
    # expr-lang binds ! tighter than &&, and && tighter than ||.
    tree = parse_condition("!isNaN(result[0]) && result[0] > 1 || result[0] < 0").tree
    assert evaluate(tree, [-1.0]) is True
    assert evaluate(tree, [0.5]) is False


# ------------------------------------------------------------------ args


def test_args_template_default_and_caller_override() -> None:
    args = [{"name": "job", "value": "api"}, {"name": "v"}]
    query = 'sum(up{job="{{args.job}}",version="{{ args.v }}"})'
    tpl = template(prom_metric(query=query, successCondition="result[0] >= 1"), args=args)
    default = gates_from_template(tpl, args={"v": "{{version}}"})
    assert default.metrics[0].query == 'sum(up{job="api",version="{{version}}"})'
    assert default.details[0].versioned
    assert default.details[0].query_args == ("job", "v")
    assert "relconsole's {{version}}" in " ".join(default.details[0].mapping)
    override = gates_from_template(tpl, args={"v": "{{version}}", "job": "web",
                                              "not-declared": "ignored, as in Argo"})
    assert override.metrics[0].query == 'sum(up{job="web",version="{{version}}"})'


def test_an_arg_value_is_substituted_once() -> None:
    # Argo substitutes once: a value that looks like a placeholder stays as written.
    tpl = template(prom_metric(query='up{a="{{args.a}}"}', successCondition="result[0] >= 1"),
                   args=[{"name": "a"}])
    imported = gates_from_template(tpl, args={"a": "{{args.a}}"})
    assert imported.metrics[0].query == 'up{a="{{args.a}}"}'


def test_args_in_conditions_limits_and_interval() -> None:
    tpl = template(prom_metric(
        successCondition="result[0] <= {{args.max-error-rate}}",
        failureLimit="{{args.failures}}", interval="{{args.every}}", count="{{args.n}}"),
        args=[{"name": "v", "value": "{{version}}"}, {"name": "max-error-rate"},
              {"name": "failures", "value": "2"}, {"name": "every", "value": "1m"},
              {"name": "n", "value": "10"}])
    imported = gates_from_template(tpl, args={"max-error-rate": "0.02"})
    gate, detail = imported.gates[0], imported.details[0]
    assert (gate.max, gate.failure_limit) == (0.02, 3)
    assert (detail.interval, detail.interval_seconds, detail.count) == ("1m", 60, 10)


def test_a_missing_arg_names_it_once_per_field() -> None:
    tpl = template(prom_metric(query=ISTIO_QUERY, successCondition="result[0] >= 0.95"),
                   args=[{"name": "service-name"}])
    (message,) = problems(tpl)
    assert "metric 'm': provider.prometheus.query" in message
    assert "needs args.service-name, which has no value" in message
    assert "args={'service-name': ...}" in message


def test_undeclared_secret_and_unknown_placeholders() -> None:
    tpl = template(
        prom_metric("a", query='up{x="{{args.nope}}"}', successCondition="result[0] >= 1"),
        prom_metric("b", query='up{t="{{args.token}}"}', successCondition="result[0] >= 1"),
        prom_metric("c", query='up{version="{{version}}"}', successCondition="result[0] >= 1"),
        prom_metric("d", query='up{x="{{args.v"}', successCondition="result[0] >= 1"),
        args=[{"name": "token", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}])
    a, b, c, d = problems(tpl)
    assert "metric 'a'" in a and "args.nope, which the template does not declare" in a
    assert "metric 'b'" in b and "valueFrom.secretKeyRef" in b
    assert "metric 'c'" in c and "{{version}}, which Argo cannot resolve" in c
    assert "args={'NAME': '{{version}}'}" in c
    assert "metric 'd'" in d and "no }}" in d


def test_a_query_that_selects_by_a_fixed_arg_says_so() -> None:
    tpl = template(prom_metric(query='sum(up{rollouts_pod_template_hash="{{args.hash}}"})',
                               successCondition="result[0] >= 1"), args=[{"name": "hash"}])
    detail = gates_from_template(tpl, args={"hash": "5d8f7c"}).details[0]
    assert not detail.versioned and detail.query_args == ("hash",)
    words = " ".join(detail.mapping)
    assert 'args.hash="5d8f7c", kept as the fixed value' in words
    assert "asks for {{version}}" in words


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(("condition", "says"), [
    ("result.successful > 1", "reads result.successful, a field of a structured result"),
    ("result[0] + 1 > 2", "uses arithmetic (the + at 11)"),
    ("-result[0] < 1", "uses arithmetic"),
    ("result[0] - 1 < 1", "unexpected '-'"),
    ("result[0] > 'a'", "uses strings"),
    ("result[0] in [1, 2]", "unexpected 'in'"),
    ("!result[0] > 1", "negates a number; write !(result[0] > 1)"),
    ("1 < result[0] < 2", "chained comparison"),
    ("isInf(result[0])", "uses isInf(...)"),
    ("default(result, 0) < 0.05", "uses default(...)"),
    ("asFloat(result) < 1", "uses asFloat(...)"),
    ("sum(result) < 1", "uses the function sum(...)"),
    ("foo < 1", "uses the name 'foo'"),
    ("true", "uses the constant 'true'"),
    ("result[0]", "is a number, not a condition"),
    ("result[0] > 1 && 2", "joins a number"),
    ("(result[0] > 1) > 0", "compares a condition"),
    ("isNaN(result[0] > 1)", "isNaN(...) takes a number"),
    ("len(result[0]) > 0", "len(...) at 5 takes result itself"),
    ("all(result, 3)", "needs a condition on #"),
    ("# < 3", "'#' at 1 is only meaningful inside all"),
    ("result[x] > 1", "needs a whole number index"),
    ("result[0] > 0x10", "is not a number relconsole reads"),
    ("result[0] >= 0.95 &&", "unexpected the end"),
    ("(result[0] >= 0.95", "expected ')'"),
    ("result[0] @ 1", "unexpected character '@'"),
    ("result[0] > 1 && result > 1", "both as a list"),
    ("result[1] > 0", "reads a second series"),
    ("result[0] != 1", "passes values on both sides of a failing range (at 1)"),
    ("result[0] < 1 || result[0] > 2", "both sides of a failing range"),
    ("result[0] > 2 && result[0] < 1", "no number passes it"),
    ("len(result) > 0", "every number passes it"),
    ("isNaN(result[0]) || len(result) >= 0", "every number passes it"),
])
def test_unsupported_conditions_are_refused(condition: str, says: str) -> None:
    (message,) = problems(template(prom_metric(successCondition=condition)),
                          args={"v": "x"})
    assert message.startswith("AnalysisTemplate t: metric 'm': successCondition")
    assert f'"{condition}"' in message  # the expression, quoted as written
    assert says in message
    assert "relconsole imports conditions" in message or "Aggregate the query" in message \
        or "exact opposite" in message


def test_conditions_that_disagree_are_refused() -> None:
    (message,) = problems(template(prom_metric(
        successCondition="result[0] <= 0.02", failureCondition="result[0] > 0.01")),
        args={"v": "x"})
    assert "both hold between 0.01 and 0.02" in message
    assert "failureCondition wins" in message


@pytest.mark.parametrize(("provider", "name"), [
    ({"web": {"url": "http://x/api"}}, "web"),
    ({"datadog": {"query": "avg:x"}}, "datadog"),
    ({"job": {"spec": {}}}, "job"),
    ({}, "none"),
    ({"prometheus": {"query": "up"}, "web": {"url": "http://x"}}, "prometheus, web"),
])
def test_other_providers_are_refused(provider: dict[str, Any], name: str) -> None:
    (message,) = problems(template({"name": "webmetric", "successCondition": "result == 1",
                                    "provider": provider}))
    assert f"metric 'webmetric': provider \"{name}\": is not the Prometheus provider" in message
    assert "relconsole imports Prometheus metrics only" in message


def test_docs_web_metric_with_secret_is_refused() -> None:
    # Re-typed from docs/features/analysis.md, "Referencing Secrets".
    tpl = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
           "spec": {"args": [{"name": "api-token", "valueFrom": {
               "secretKeyRef": {"name": "token-secret", "key": "apiToken"}}}],
               "metrics": [{"name": "webmetric", "provider": {"web": {"headers": [
                   {"key": "Authorization", "value": "Bearer {{ args.api-token }}"}]}}}]}}
    (message,) = problems(tpl)
    assert message.startswith("AnalysisTemplate (unnamed): metric 'webmetric': provider")


@pytest.mark.parametrize(("fields", "says"), [
    ({"failureLimit": -1, "consecutiveSuccessLimit": 4}, "-1 turns failures off"),
    ({"failureLimit": -2}, "is below -1"),
    ({"failureLimit": "three"}, "is not a whole number"),
    ({"failureLimit": True}, "is not a whole number"),
    ({"consecutiveSuccessLimit": 3, "interval": "1m"}, "that many successes in a row"),
    ({"inconclusiveLimit": -1}, "is negative"),
    ({"consecutiveErrorLimit": -1}, "is negative"),
    ({"count": -1, "interval": "1m"}, "count \"-1\": is negative"),
    ({"count": 3}, "is above 1 with no interval, which Argo rejects"),
    ({"failureLimit": 1}, "Argo can never fail this metric"),
    ({"failureLimit": 5, "count": 5, "interval": "1m"}, "at least the 5 measurement(s)"),
    ({"interval": "5 minutes"}, "is not a positive Go duration"),
    ({"interval": "0s"}, "is not a positive Go duration"),
    ({"provider": {"prometheus": {"query": "  "}}}, "provider.prometheus.query: is missing"),
    ({"successCondition": None}, "is missing, and so is failureCondition"),
    ({"successCondition": 0.95}, "is not an expression"),
])
def test_settings_relconsole_cannot_keep_are_refused(fields: dict[str, Any],
                                                     says: str) -> None:
    metric = prom_metric(successCondition="result[0] >= 0.95")
    metric.update(fields)
    if metric.get("successCondition") is None:
        del metric["successCondition"]
    found = problems(template(metric), args={"v": "x"})
    assert all(p.startswith("AnalysisTemplate t: metric 'm': ") for p in found)
    assert any(says in p for p in found), found


def test_template_level_refusals() -> None:
    bad = template(prom_metric(successCondition="result[0] >= 1"),
                   templates=[{"templateName": "other"}])
    bad["kind"] = "AnalysisRun"
    bad["apiVersion"] = "v1"
    kind, api, nested = problems(bad, args={"v": "x"})
    assert 'kind "AnalysisRun": is not an AnalysisTemplate' in kind
    assert 'apiVersion "v1"' in api
    assert "spec.templates" in nested and "Import each referenced template" in nested
    (empty,) = problems(template())
    assert "spec.metrics: is missing or empty" in empty
    with pytest.raises(TemplateError, match="not a mapping"):
        gates_from_template([], args=None)  # type: ignore[arg-type]
    dup = template(prom_metric(successCondition="result[0] >= 1"),
                   prom_metric(successCondition="result[0] >= 1"))
    (twice,) = problems(dup, args={"v": "x"})
    assert "is used by two metrics" in twice


def test_every_problem_of_a_template_is_told_at_once() -> None:
    tpl = template(
        prom_metric("a", successCondition="result[0] + 1 > 2"),
        {"name": "b", "provider": {"datadog": {}}},
        prom_metric("c", successCondition="result[0] >= 1", failureLimit=-1),
        prom_metric("d", successCondition="result[0] >= 1"),  # fine on its own
        prom_metric("e", failureCondition="result.x > 1", successCondition="result[0] > 1",
                    rangeQuery=None),
    )
    found = problems(tpl, args={"v": "x"})
    assert [p.split("'")[1] for p in found] == ["a", "b", "c", "e"]
    assert all(p.count("\n") == 0 for p in found)


def test_parse_errors_are_condition_errors() -> None:
    with pytest.raises(ConditionError) as caught:
        parse_condition("result[0] >")
    assert isinstance(caught.value, ValueError)
    assert "unexpected the end" in caught.value.problem


# ------------------------------------------------------------------ properties

OPS = ("<", "<=", ">", ">=", "==", "!=")
thresholds = st.one_of(
    st.integers(-5, 5).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


@st.composite
def comparisons(draw: st.DrawFn) -> tuple[str, list[float]]:
    t = draw(thresholds)
    op = draw(st.sampled_from(OPS))
    text = f"{t!r} {op} result[0]" if draw(st.booleans()) else f"result[0] {op} {t!r}"
    return text, [t]


@st.composite
def conditions(draw: st.DrawFn) -> tuple[str, list[float]]:
    first, ts = draw(comparisons())
    shape = draw(st.sampled_from(("one", "and", "or", "not", "len", "nan", "all")))
    if shape in ("and", "or"):
        second, more = draw(comparisons())
        joint = " && " if shape == "and" else " || "
        return f"({first}){joint}({second})", ts + more
    if shape == "not":
        return f"!({first})", ts
    if shape == "len":
        return f"len(result) == 0 || {first}", ts
    if shape == "nan":
        return f"!isNaN(result[0]) && {first}", ts
    if shape == "all":
        return "all(result, " + first.replace("result[0]", "#") + ")", ts
    return first, ts


def gate_passes(tpl_gate: Any, value: float) -> bool:
    reading = Reading(value=value, at=0.0)
    verdict, *_ = judge(tpl_gate, MetricPair(reading, reading), now=0.0, stale_after=60.0)
    assert verdict is not Verdict.INCONCLUSIVE
    return verdict is Verdict.PASS


def probes(ts: list[float], extra: list[float]) -> list[float]:
    out = list(extra)
    for t in ts:
        out += [t, below(t), above(t), t - 1, t + 1]
    return [v for v in out if math.isfinite(v)]


@PROPERTY
@given(conditions(), st.booleans(),
       st.lists(st.floats(-2e6, 2e6, allow_nan=False, allow_infinity=False), max_size=20))
def test_imported_limits_agree_with_the_condition(
        case: tuple[str, list[float]], as_failure: bool, values: list[float]) -> None:
    text, ts = case
    key = "failureCondition" if as_failure else "successCondition"
    tpl = template(prom_metric(**{key: text}))
    parsed = parse_condition(text)
    success, failure = (None, parsed) if as_failure else (parsed, None)
    points = probes(ts, values)
    try:
        imported = gates_from_template(tpl, args={"v": "{{version}}"})
    except TemplateError:
        # A refusal must be right: the values Argo passes are not one closed range.
        passing = sorted(v for v in points if argo_phase(success, failure, [v]) == "Successful")
        failing = [v for v in points if argo_phase(success, failure, [v]) != "Successful"]
        assert not passing or not failing or any(
            passing[0] < v < passing[-1] for v in failing), text
        return
    gate = imported.gates[0]
    for value in points:
        phase = argo_phase(success, failure, [value])
        assert phase in ("Successful", "Failed")
        assert gate_passes(gate, value) == (phase == "Successful"), (text, value, gate)


@PROPERTY
@given(thresholds, st.sampled_from(OPS[:4]),
       st.lists(st.floats(-2e6, 2e6, allow_nan=False, allow_infinity=False), max_size=10))
def test_a_condition_and_its_opposite_import_as_one_gate(
        t: float, op: str, values: list[float]) -> None:
    opposite = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}[op]
    success, failure = f"result[0] {op} {t!r}", f"result[0] {opposite} {t!r}"
    both = gates_from_template(template(prom_metric(
        successCondition=success, failureCondition=failure)), args={"v": "x"}).gates[0]
    alone = gates_from_template(template(prom_metric(successCondition=success)),
                                args={"v": "x"}).gates[0]
    assert (both.min, both.max) == (alone.min, alone.max)
    for value in probes([t], values):
        expected = evaluate(parse_condition(success).tree, [value])
        assert gate_passes(both, value) is expected


# Random trees, written both as Argo's expression and as Python: the parser must read
# precedence, negation and grouping as expr-lang does.
leaves = st.tuples(st.sampled_from(OPS), st.integers(-3, 3)).map(
    lambda p: (f"result[0] {p[0]} {p[1]}", f"(v {p[0]} {p[1]})"))


def _join(children: st.SearchStrategy[tuple[str, str]]) -> st.SearchStrategy[tuple[str, str]]:
    def combine(kind: str, a: tuple[str, str], b: tuple[str, str]) -> tuple[str, str]:
        if kind == "not":
            return f"!({a[0]})", f"(not ({a[1]}))"
        if kind == "paren":
            return f"({a[0]})", f"({a[1]})"
        expr_op, py_op = ("&&", "and") if kind == "and" else ("||", "or")
        return f"{a[0]} {expr_op} {b[0]}", f"{a[1]} {py_op} {b[1]}"
    return st.builds(combine, st.sampled_from(("and", "or", "not", "paren")),
                     children, children)


trees = st.recursive(leaves, _join, max_leaves=6)


@PROPERTY
@given(trees, st.integers(-4, 4))
def test_parser_reads_precedence_like_expr_lang(tree: tuple[str, str], v: int) -> None:
    expr_text, python_text = tree
    # Neither text brackets && / ||: each language applies its own precedence, and
    # Python's (not > and > or) is expr-lang's (! > && > ||).
    expected = eval(python_text, {}, {"v": float(v)})
    assert evaluate(parse_condition(expr_text).tree, [float(v)]) is expected
