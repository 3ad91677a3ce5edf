"""Issue 11: a metric's PromQL read as counters (relconsole/config/counts.py).

The design's error ratio is judged on the counters it names; anything else keeps being
judged on values, and says why.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relconsole.config import ConfigProblems, load_config
from relconsole.config.counts import decompose
from tests.fuzz_settings import FUZZ_SMALL

DESIGN = ('sum(rate(http_requests_total{version="{{version}}",code=~"5.."}[1m])) / '
          'sum(rate(http_requests_total{version="{{version}}"}[1m]))')

names = st.from_regex(r"[a-z][a-z0-9_]{0,12}_total", fullmatch=True)
labels = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in ("version", "by", "without", "on", "bool", "offset"))
values = st.text(alphabet="abcXYZ019._-/ ", max_size=8)
ops = st.sampled_from(["=", "!=", "=~", "!~"])
windows = st.sampled_from(["30s", "1m", "5m", "1h"])
per_second = st.sampled_from(["rate", "irate"])


@st.composite
def selectors(draw: st.DrawFn, name: str | None = None) -> str:
    metric = name or draw(names)
    extra = draw(st.lists(st.tuples(labels, ops, values), max_size=3,
                          unique_by=lambda t: t[0]))
    matchers = ['version="{{version}}"'] + [
        f'{label}{op}"{value}"' for label, op, value in extra if op not in ("=~", "!~")
        or value]
    return metric + "{" + ",".join(matchers) + "}"


def _sum(function: str, selector: str, window: str, by: str) -> str:
    grouping = {"": "", "empty": " by () ", "version": " by (version) "}[by]
    return f"sum{grouping}({function}({selector}[{window}]))"


@st.composite
def ratios(draw: st.DrawFn) -> tuple[str, str, str]:
    total = draw(selectors())
    # The numerator a label-narrowed total, or another counter altogether.
    events = total[:-1] + ',code=~"5.."}' if draw(st.booleans()) else draw(selectors())
    if draw(st.booleans()):
        top_fn, bottom_fn = draw(per_second), draw(per_second)
    else:
        top_fn = bottom_fn = "increase"
    by = st.sampled_from(["", "empty", "version"])
    top = _sum(top_fn, events, draw(windows), draw(by))
    if draw(st.booleans()):
        top = f"({top} or vector(0))"
    query = f"{top} / {_sum(bottom_fn, total, draw(windows), draw(by))}"
    if draw(st.booleans()):
        query = f"({query})"
    return query, events, total


@FUZZ_SMALL
@given(ratios())
def test_a_ratio_of_summed_counter_rates_decomposes_to_its_selectors(
        case: tuple[str, str, str]) -> None:
    query, events, total = case
    found = decompose(query).source
    assert found is not None, decompose(query).why
    assert found.derived
    # The same selectors, compared as PromQL (the parser's own reading of each).
    import promql_parser

    def same(a: str, b: str) -> bool:
        fill = "__v__"
        return (str(promql_parser.parse(a.replace("{{version}}", fill)))
                == str(promql_parser.parse(b.replace("{{version}}", fill))))

    assert same(found.events, events)
    assert same(found.total, total)


@st.composite
def non_ratios(draw: st.DrawFn) -> str:
    a, b = draw(selectors()), draw(selectors())
    w = draw(windows)
    return draw(st.sampled_from([
        f"histogram_quantile(0.99, sum by (le) (rate({a.replace('_total', '_bucket')}[{w}])))",
        f"sum(rate({a}[{w}]))",
        f"sum(rate({a}[{w}])) * sum(rate({b}[{w}]))",
        f"sum(rate({a}[{w}])) - sum(rate({b}[{w}]))",
        f"100 * sum(rate({a}[{w}])) / sum(rate({b}[{w}]))",
        f"rate({a}[{w}]) / rate({b}[{w}])",
        f"sum by (code) (rate({a}[{w}])) / sum(rate({b}[{w}]))",
        f"sum without (pod) (rate({a}[{w}])) / sum(rate({b}[{w}]))",
        f"max(rate({a}[{w}])) / sum(rate({b}[{w}]))",
        f"sum(rate({a}[{w}] offset 5m)) / sum(rate({b}[{w}]))",
        f"sum(rate({a}[{w}])) / on(version) sum(rate({b}[{w}]))",
        f"sum(rate({a}[{w}])) / sum(increase({b}[{w}]))",
        f"sum(rate({a}[{w}:10s])) / sum(rate({b}[{w}]))",
        f"sum(rate({a}[{w}]) or {b}) / sum(rate({b}[{w}]))",
        f"sum({a}) / sum({b})",
        f"avg_over_time({a}[{w}])",
    ]))


@FUZZ_SMALL
@given(non_ratios())
def test_anything_else_is_never_decomposed_and_says_why(query: str) -> None:
    found = decompose(query)
    assert found.source is None
    assert found.why


def test_the_design_query_and_a_histogram_quantile_in_words() -> None:
    source = decompose(DESIGN).source
    assert source is not None
    assert source.events == 'http_requests_total{version="{{version}}",code=~"5.."}'
    assert source.total == 'http_requests_total{version="{{version}}"}'
    why = decompose("histogram_quantile(0.99, sum by (le) (rate("
                    'h_bucket{version="{{version}}"}[1m])))').why
    assert why == ("histogram_quantile is not a ratio of counters; add histogram: to judge "
                   "it on counts")


def _config(tmp_path: Path, metrics: str) -> Path:
    path = tmp_path / "relconsole.yaml"
    path.write_text(textwrap.dedent("""\
        release:
          service: api
          version: 2.0.0
          environment: staging
          steps: [{weight: 10, bake: 1m}, {weight: 100}]
        providers:
          metrics: {type: prometheus, url: "http://127.0.0.1:9"}
          traffic: {type: sim}
        versions: {baseline: 1.0.0}
        metrics:
        """) + textwrap.indent(textwrap.dedent(metrics), "  ")
        + "gates:\n  - {metric: error_rate, max: 0.01}\n")
    return path


def test_counts_and_histogram_keys_build_count_sources(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, """\
        error_rate:
          unit: ratio
          counts: {events: 'http_requests_total{version="{{version}}",code=~"5.."}', total: 'http_requests_total{version="{{version}}"}'}
        latency_p99:
          unit: seconds
          histogram: {buckets: 'http_request_duration_seconds_bucket{version="{{version}}"}', quantile: 0.99}
        """), resolve_secrets=False)  # noqa: E501
    error_rate, latency = cfg.plan.metrics
    assert error_rate.counts is not None and not error_rate.counts.derived
    assert error_rate.judging().startswith("judged on counts: events http_requests_total{")
    # Written only as counters, it still has a values query for the sparklines.
    assert "or vector(0)" in error_rate.query
    assert latency.counts is not None and latency.counts.histogram
    assert latency.counts.count == 'http_request_duration_seconds_count{version="{{version}}"}'
    assert latency.judging() == (
        "judged on counts: requests slower than the baseline's p99 bucket of "
        'http_request_duration_seconds_bucket{version="{{version}}"}')


@pytest.mark.parametrize(("metrics", "line", "problem"), [
    ("""\
     error_rate:
       counts:
         events: 'sum(rate(errors_total{version="{{version}}"}[1m]))'
         total: 'requests_total{version="{{version}}"}'
     """, 13, "is an expression, not a plain series selector"),
    ("""\
     error_rate:
       counts:
         events: 'errors_total{version="{{version}}"}'
         total: 'requests_total'
     """, 14, "has no {{version}} placeholder"),
    ("""\
     error_rate:
       histogram: {buckets: 'latency_seconds{version="{{version}}"}', quantile: 0.99}
     """, 12, "latency_seconds is not a histogram's _bucket series"),
    ("""\
     error_rate:
       counts: {events: 'e_total{version="{{version}}"}', total: 't_total{version="{{version}}"}'}
       histogram: {buckets: 'l_bucket{version="{{version}}"}', quantile: 0.99}
     """, 13, "has both counts: and histogram:"),
])
def test_a_bad_counter_selector_is_a_problem_on_its_line(
        tmp_path: Path, metrics: str, line: int, problem: str) -> None:
    with pytest.raises(ConfigProblems) as found:
        load_config(_config(tmp_path, metrics), resolve_secrets=False, collect=True)
    text = [str(p) for p in found.value.problems]
    assert any(f":{line}:" in t and problem in t for t in text), text
