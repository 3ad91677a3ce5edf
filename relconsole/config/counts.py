"""Which counters a metric is judged on, read out of PromQL with a real parser.

A gate judges whole numbers of requests and events when it can: a metric written with
`counts:` (events and total counters) or `histogram:` (a `_bucket` series and a
quantile), or a `query:` that is a ratio of summed rates of counters, the design's own
error rate:

    sum(rate(REQS{version="{{version}}",code=~"5.."}[1m]))
      / sum(rate(REQS{version="{{version}}"}[1m]))

That query is decomposed into its two selectors (`decompose`); the Prometheus adapter
then reads the raw counters and the engine takes their increments itself, so a 5xx
series that does not exist yet is 0 errors rather than "no data". Any other query is
judged on its values as before, and `decompose` says why in words `check` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relconsole.config.queries import SENTINEL, QueryProblem
from relconsole.model import CountSource

RATE_FUNCTIONS = frozenset({"rate", "irate", "increase"})
# rate and irate are both per second; increase is per window: a ratio of one over the
# other is not events per request.
_PER_SECOND = frozenset({"rate", "irate"})
_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


@dataclass(frozen=True)
class Decomposition:
    """A query read as counters (`source`), or why it is judged on values (`why`)."""

    source: CountSource | None
    why: str = ""


def _parse(text: str) -> Any:
    import promql_parser  # compiled; loaded only when a file has PromQL to read

    return promql_parser.parse(text.replace("{{version}}", SENTINEL))


def _kind(node: Any) -> str:
    return type(node).__name__


def _unwrap(node: Any) -> Any:
    while _kind(node) == "ParenExpr":
        node = node.expr
    return node


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _op(matcher: Any) -> str:
    return _OPS.get(str(matcher.op).rsplit(".", 1)[-1], "=")


def _name(selector: Any) -> str:
    if selector.name:
        return str(selector.name)
    for m in selector.matchers.matchers:
        if m.name == "__name__" and _op(m) == "=":
            return str(m.value)
    return ""


def selector_text(selector: Any) -> str:
    """A vector selector written back as PromQL, with `{{version}}` where it was."""
    name = _name(selector)
    parts = [
        f"{m.name}{_op(m)}{_quote(str(m.value))}"
        for m in selector.matchers.matchers
        if not (m.name == "__name__" and _op(m) == "=" and str(m.value) == name)
    ]
    text = name + ("{" + ",".join(parts) + "}" if parts or not name else "")
    return text.replace(SENTINEL, "{{version}}")


def _pinned(selector: Any) -> set[str]:
    """Labels the selector fixes to one value (`label="x"`)."""
    return {str(m.name) for m in selector.matchers.matchers if _op(m) == "="}


@dataclass(frozen=True)
class _Side:
    selector: Any
    function: str
    text: str


def _is_zero_vector(node: Any) -> bool:
    node = _unwrap(node)
    if _kind(node) != "Call" or node.func.name != "vector" or len(node.args) != 1:
        return False
    arg = _unwrap(node.args[0])
    return _kind(arg) == "NumberLiteral" and float(arg.val) == 0.0


def _summed(node: Any, where: str, *, numerator: bool) -> _Side | str:
    """One side of the ratio as `sum(rate(selector[w]))`, or why it is not one."""
    node = _unwrap(node)
    if numerator and _kind(node) == "BinaryExpr" and str(node.op) == "or":
        if _is_zero_vector(node.rhs):  # `(sum(rate(errors[1m])) or vector(0))`
            return _summed(node.lhs, where, numerator=False)
        return f"the {where} is an `or` of two expressions"
    if _kind(node) != "AggregateExpr" or str(node.op) != "sum":
        what = f"{node.op}(...), not" if _kind(node) == "AggregateExpr" else "not"
        return f"the {where} is {what} sum(rate(counter[window]))"
    inner = _unwrap(node.expr)
    if _kind(inner) != "Call" or inner.func.name not in RATE_FUNCTIONS:
        return f"the {where} sums something other than rate/irate/increase of a counter"
    if not inner.args:
        return f"the {where} takes {inner.func.name}() of nothing"
    arg = inner.args[0]
    if _kind(arg) == "SubqueryExpr":
        return f"the {where} takes the rate of a subquery, not of a counter"
    if _kind(arg) != "MatrixSelector":
        return f"the {where} takes {inner.func.name}() of something other than a counter"
    selector = arg.vector_selector
    if selector.offset is not None or selector.at is not None:
        return f"the {where} reads its counter with offset or @, not as it is now"
    if selector.matchers.or_matchers:
        return f"the {where} selects its counter with `or` between matchers"
    if not _name(selector):
        return f"the {where} selects series without a metric name"
    modifier = node.modifier
    if modifier is not None:
        labels = [str(label) for label in modifier.labels]
        if str(modifier.type).endswith("Without"):
            return f"the {where} sums without ({', '.join(labels)}): one ratio per series left"
        loose = [label for label in labels if label not in _pinned(selector)]
        if loose:
            return (f"the {where} sums by ({', '.join(loose)}): one ratio per "
                    f"{loose[0]}, where a gate judges one per version")
    text = selector_text(selector)
    if "{{version}}" not in text:
        return f"the {where}'s counter is not selected by {{{{version}}}}"
    return _Side(selector, str(inner.func.name), text)


def _why_not_ratio(node: Any) -> str:
    node = _unwrap(node)
    if _kind(node) == "Call":
        name = node.func.name
        if name == "histogram_quantile":
            return ("histogram_quantile is not a ratio of counters; add histogram: to judge "
                    "it on counts")
        return f"{name}() is not a ratio of counters; add counts: to judge it on counts"
    if _kind(node) == "BinaryExpr":
        return f"the query is a `{node.op}` expression, not a ratio of two sums of counters"
    return "the query is not a ratio of counters; add counts: to judge it on counts"


def decompose(query: str) -> Decomposition:
    """`sum(rate(A[w])) / sum(rate(B[w]))` as CountSource(events=A, total=B), or why not."""
    if not query.strip():
        return Decomposition(None, "no query")
    try:
        tree = _unwrap(_parse(query))
    except (ValueError, TypeError):
        return Decomposition(None, "the query is not valid PromQL")
    if _kind(tree) != "BinaryExpr" or str(tree.op) != "/":
        return Decomposition(None, _why_not_ratio(tree))
    if tree.modifier is not None:
        return Decomposition(None, "the ratio matches labels (on/ignoring/group), so it may "
                                   "hold several series")
    top = _summed(tree.lhs, "numerator", numerator=True)
    if isinstance(top, str):
        return Decomposition(None, top)
    bottom = _summed(tree.rhs, "denominator", numerator=False)
    if isinstance(bottom, str):
        return Decomposition(None, bottom)
    if top.function != bottom.function and not {top.function, bottom.function} <= _PER_SECOND:
        return Decomposition(None, f"the numerator is {top.function}() and the denominator "
                                   f"{bottom.function}(): not events per request")
    return Decomposition(CountSource(events=top.text, total=bottom.text, derived=True))


def check_selector(text: str, *, histogram: bool = False) -> QueryProblem | None:
    """A problem with a counter selector of `counts:`/`histogram:`, or None."""
    example = ('http_request_duration_seconds_bucket{version="{{version}}"}' if histogram
               else 'http_requests_total{version="{{version}}"}')
    hint_plain = f"Write the counter's selector alone, e.g. '{example}'"
    try:
        node = _parse(text)
    except (ValueError, TypeError) as exc:
        reason = str(exc).replace(SENTINEL, "{{version}}").splitlines()[0]
        return QueryProblem(f"is not valid PromQL ({reason})", hint_plain)
    if _kind(node) != "VectorSelector":
        if _kind(node) == "MatrixSelector":
            problem = "is a range selector ([window]); relconsole takes the increments itself"
        elif _kind(node) in ("Call", "AggregateExpr"):
            problem = "is an expression, not a plain series selector"
        else:
            problem = "is not a plain series selector"
        return QueryProblem(problem, hint_plain)
    if node.offset is not None or node.at is not None:
        return QueryProblem("reads the counter with offset or @", hint_plain)
    name = _name(node)
    if not name:
        return QueryProblem("has no metric name", hint_plain)
    if "{{version}}" not in selector_text(node):
        return QueryProblem(
            "has no {{version}} placeholder, so the canary and the baseline would read the "
            "same series", f"Select the version, e.g. '{example}'")
    if histogram and not name.endswith("_bucket"):
        return QueryProblem(
            f"{name} is not a histogram's _bucket series",
            "Name the histogram's buckets, e.g. "
            "'http_request_duration_seconds_bucket{version=\"{{version}}\"}'")
    if not histogram and name.endswith("_bucket"):
        return QueryProblem(
            f"{name} is a histogram's buckets, not a counter of events",
            "Use histogram: {buckets: '...', quantile: 0.99} for latency")
    if name.endswith("_sum"):
        return QueryProblem(
            f"{name} is a sum of observed values, not a count",
            "Use the counter of requests (…_total or …_count)")
    return None


DISPLAY_WINDOW = "1m"


def display_query(source: CountSource) -> str:
    """A values query for a metric written only as counters (sparklines, `status`)."""
    w = DISPLAY_WINDOW
    if source.histogram:
        return (f"histogram_quantile({source.quantile:g}, sum by (le) "
                f"(rate({source.buckets}[{w}])))")
    # Here, and only for the events, an empty result is 0: the counters were named, so
    # a missing series is one that has not been incremented yet.
    return f"(sum(rate({source.events}[{w}])) or vector(0)) / sum(rate({source.total}[{w}]))"


def judged_on(query: str, counts: Any = None, histogram: Any = None) -> tuple[
        CountSource | None, str, str]:
    """(count source, why it is judged on values, the query to read values with).

    `counts`/`histogram` are the file's `counts:`/`histogram:` blocks (validated models);
    written, they win over the query, which still gives the values shown on screen.
    """
    source: CountSource | None = None
    if counts is not None:
        source = CountSource(events=counts.events.strip(), total=counts.total.strip())
    elif histogram is not None:
        source = CountSource(buckets=histogram.buckets.strip(), quantile=histogram.quantile)
    if source is not None:
        return source, "", query if query.strip() else display_query(source)
    if not query.strip():
        return None, "", query
    found = decompose(query)
    return found.source, found.why, query
