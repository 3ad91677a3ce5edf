"""What a metric's PromQL says about the canary, read with a real PromQL parser.

A query that divides a canary-only numerator by a denominator of every version's
requests dilutes the canary's rate by the stable traffic: at 1 % canary weight a 100 %
error rate reads as about 1 %, and the gate would pass a broken canary. That is a
mistake in the file, so `check` (and every load) says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

# Stands in for {{version}} so the query parses; a label value no real series carries.
SENTINEL = "__relconsole_version__"


@dataclass(frozen=True)
class QueryProblem:
    problem: str
    hint: str


def _children(node: object) -> Iterator[object]:
    for name in ("lhs", "rhs", "expr"):
        child = getattr(node, name, None)
        if child is not None:
            yield child
    args = getattr(node, "args", None)
    if isinstance(args, list | tuple):
        yield from args


def _divisions(node: object) -> Iterator[tuple[object, object]]:
    if type(node).__name__ == "BinaryExpr" and str(getattr(node, "op", "")) == "/":
        yield node.lhs, node.rhs  # type: ignore[attr-defined]
    for child in _children(node):
        yield from _divisions(child)


def _selects_series(node: object) -> bool:
    """Whether a side of a division reads series (a number or scalar literal does not)."""
    if type(node).__name__ in ("VectorSelector", "MatrixSelector"):
        return True
    return any(_selects_series(child) for child in _children(node))


def check_query(query: str) -> QueryProblem | None:
    """A problem with a Prometheus query written with {{version}}, or None."""
    import promql_parser  # a compiled parser: loaded only when a file has PromQL to read

    text = query.replace("{{version}}", SENTINEL)
    try:
        tree = promql_parser.parse(text)
    except (ValueError, TypeError) as exc:
        reason = str(exc).replace(SENTINEL, "{{version}}").splitlines()[0]
        return QueryProblem(
            f"is not valid PromQL ({reason})",
            "Try the query in Prometheus' own expression browser, with a real version "
            "in place of {{version}}",
        )
    for lhs, rhs in _divisions(tree):
        top, bottom = SENTINEL in str(lhs), SENTINEL in str(rhs)
        if top and not bottom and _selects_series(rhs):
            return QueryProblem(
                "{{version}} is only in the numerator of a ratio: the denominator counts "
                "every version's requests, so the canary's rate is diluted by the stable "
                "traffic",
                'Select the same version below the line too, e.g. '
                '.../ sum(rate(http_requests_total{version="{{version}}"}[1m]))',
            )
        if bottom and not top and _selects_series(lhs):
            return QueryProblem(
                "{{version}} is only in the denominator of a ratio, so the numerator "
                "counts every version",
                'Select the same version above the line too, e.g. '
                'sum(rate(http_requests_total{version="{{version}}",code=~"5.."}[1m])) / ...',
            )
    return None
