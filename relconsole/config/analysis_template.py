"""An Argo Rollouts AnalysisTemplate (or ClusterAnalysisTemplate) as relconsole gates.

`gates_from_template(template, args=...)` reads the template as the Kubernetes API
returns it (a plain dict) and gives the `MetricSpec`s and `GateSpec`s that judge the
same thing, or raises one `TemplateError` carrying every problem of the template. It is
pure: no I/O, no Kubernetes client, nothing from the engine or a front end.

What Argo means, from its own pages and code (argoproj/argo-rollouts):

- docs/features/analysis.md — args, interval/count, failureLimit, inconclusive runs,
  dryRun, consecutiveSuccessLimit, "Handling Metric Results" (NaN, Inf, empty array).
- docs/analysis/prometheus.md — the Prometheus provider, `result[0]`, range queries
  and `all(result, # < 1000)`.
- utils/evaluate/evaluate.go `EvaluateResult` — one measurement: only successCondition
  -> failed = !success; only failureCondition -> success = !failure; failure wins;
  neither true -> Inconclusive; an expression that cannot be evaluated (`result[0]` of an
  empty vector) -> Error.
- analysis/analysis.go `assessMetricFailureInconclusiveOrError` — the metric fails when
  failed > failureLimit and is inconclusive when inconclusive > inconclusiveLimit, both
  counted over the whole run; it errors when consecutiveErrors > consecutiveErrorLimit
  (default 4), counted in a row. (The docs say "after three failed measurements" for
  failureLimit 3; the code's strict > fails on the fourth. The code is what runs.)
- utils/template/template.go — `{{args.NAME}}` is substituted once, with surrounding
  spaces allowed; any other `{{...}}` makes Argo fail ("failed to resolve").

Conditions are read with a tokenizer and a recursive-descent parser for exactly the
part of expr-lang that maps onto relconsole's limits (see `parse_condition`), and
`evaluate` runs the tree the way expr-lang does, so tests can check the produced limits
against the condition itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from relconsole.model import GateSpec, MetricSpec
from relconsole.placeholders import VERSION

__all__ = [
    "Condition",
    "ConditionError",
    "EvalError",
    "Imported",
    "Limits",
    "MetricImport",
    "TemplateError",
    "argo_phase",
    "evaluate",
    "gates_from_template",
    "limits_for",
    "parse_condition",
]

KINDS = ("AnalysisTemplate", "ClusterAnalysisTemplate")
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4  # Argo's defaults.DefaultConsecutiveErrorLimit
# Written as the values_why of every imported metric: it says why its gates compare
# values rather than counts (Argo's conditions compare one measured value).
VALUES_WHY = "imported from an Argo AnalysisTemplate, whose conditions compare each measured value"
INSTEAD_PROVIDER = ("relconsole imports Prometheus metrics only; write this one as a relconsole "
                    "metric with a Prometheus query and a gate, or leave it to Argo")
INSTEAD_CONDITION = ("relconsole imports conditions on the one value of the query, like "
                     "result[0] <= 0.01, result[0] >= 0.95 && result[0] <= 1, or "
                     "len(result) == 0 || result[0] >= 0.95")


class TemplateError(ValueError):
    """Every problem of one template, one message each (`problems`), so `relconsole
    check` can show them all at once. str() is the messages, one a line."""

    def __init__(self, problems: Sequence[str]) -> None:
        if not problems:
            raise ValueError("TemplateError needs at least one problem")
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class ConditionError(ValueError):
    """A condition outside the grammar relconsole maps; `problem` and `instead` apart."""

    def __init__(self, problem: str, instead: str = INSTEAD_CONDITION) -> None:
        super().__init__(f"{problem}. {instead}")
        self.problem = problem
        self.instead = instead


class EvalError(Exception):
    """What Argo calls a measurement Error: the expression cannot be evaluated."""


# ------------------------------------------------------------------------------ tokens

TokenKind = Literal["num", "ident", "op", "punct", "end"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    pos: int


_OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "-")
_PUNCT = "()[]{},#."
# Characters expr-lang gives a meaning relconsole cannot map (arithmetic, membership,
# strings, the ternary): named in the refusal rather than "unexpected character".
_UNSUPPORTED = {"+": "arithmetic", "*": "arithmetic", "/": "arithmetic", "%": "arithmetic",
                "^": "arithmetic", "?": "the ?: operator", ":": "the ?: operator",
                "'": "strings", '"': "strings", "`": "strings", "=": "assignment",
                "|": "the pipe operator", "&": "bitwise &"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c.isdigit():
            j = i
            while j < n and text[j].isdigit():
                j += 1
            if j < n and text[j] == "." and j + 1 < n and text[j + 1].isdigit():
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            if j < n and text[j] in "eE":
                k = j + 1
                if k < n and text[k] in "+-":
                    k += 1
                if k < n and text[k].isdigit():
                    while k < n and text[k].isdigit():
                        k += 1
                    j = k
            if j < n and (text[j].isalnum() or text[j] == "_"):
                raise ConditionError(f"'{text[i:j + 1]}' at {i + 1} is not a number "
                                     "relconsole reads (write 0.5, 10 or 1e-3)")
            tokens.append(Token("num", text[i:j], i))
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token("ident", text[i:j], i))
            i = j
            continue
        two = text[i:i + 2]
        if two in _OPERATORS:
            tokens.append(Token("op", two, i))
            i += 2
            continue
        if c in _OPERATORS:
            tokens.append(Token("op", c, i))
            i += 1
            continue
        if c in _PUNCT:
            tokens.append(Token("punct", c, i))
            i += 1
            continue
        what = _UNSUPPORTED.get(c)
        if what is not None:
            raise ConditionError(f"uses {what} (the {c} at {i + 1}), which relconsole does "
                                 "not map onto a limit")
        raise ConditionError(f"unexpected character '{c}' at {i + 1}")
    tokens.append(Token("end", "", n))
    return tokens


# -------------------------------------------------------------------------------- tree


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Result:
    index: int | None  # None: the bare `result` (the value of a scalar query)


@dataclass(frozen=True)
class Elem:
    """`#` inside all(result, ...): the element being tested."""


@dataclass(frozen=True)
class Len:
    pass


@dataclass(frozen=True)
class IsNaN:
    arg: Node


@dataclass(frozen=True)
class All:
    predicate: Node


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


Node = Num | Result | Elem | Len | IsNaN | All | Not | Cmp | And | Or
# "list" is what result[N], len(result) and all(result, ...) need; "scalar" is the bare
# `result` used as a number. One condition (or pair) cannot need both: one would error.
Shape = Literal["list", "scalar"]

_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_ARGO_FUNCTIONS = {
    "isInf": "relconsole never judges an infinite value (safety rule 1), so drop isInf(...)",
    "isNil": "a Prometheus result is never nil; drop isNil(...)",
    "default": "a Prometheus result is never nil; drop default(...)",
    "asInt": "a Prometheus result is already a number; drop asInt(...)",
    "asFloat": "a Prometheus result is already a number; drop asFloat(...)",
}


class _Parser:
    """Recursive descent, with expr-lang's precedence: || < && < comparison < ! < -.

    Each parse method returns the node and its type ("bool", "num", or "result" for the
    bare `result`), so a condition that expr-lang would reject as a type error is refused
    here with a message rather than mapped.
    """

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.at = 0
        self.in_all = False
        self.shapes: set[Shape] = set()

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def expect(self, text: str) -> Token:
        token = self.take()
        if token.text != text:
            raise ConditionError(f"expected '{text}' at {token.pos + 1}, found "
                                 f"{_shown(token)}")
        return token

    def parse(self) -> Node:
        node, kind = self.or_expr()
        token = self.peek()
        if token.kind != "end":
            raise ConditionError(f"unexpected {_shown(token)} at {token.pos + 1}")
        if kind != "bool":
            raise ConditionError("is a number, not a condition (compare it, e.g. "
                                 "result[0] <= 0.01)")
        return node

    def or_expr(self) -> tuple[Node, str]:
        left, kind = self.and_expr()
        while self.peek().text in ("||", "or"):
            token = self.take()
            right, rkind = self.and_expr()
            self._need_bool(token, kind, rkind)
            left, kind = Or(left, right), "bool"
        return left, kind

    def and_expr(self) -> tuple[Node, str]:
        left, kind = self.comparison()
        while self.peek().text in ("&&", "and"):
            token = self.take()
            right, rkind = self.comparison()
            self._need_bool(token, kind, rkind)
            left, kind = And(left, right), "bool"
        return left, kind

    def comparison(self) -> tuple[Node, str]:
        left, kind = self.unary()
        if self.peek().text not in _COMPARISONS:
            return left, kind
        token = self.take()
        right, rkind = self.unary()
        for side in (kind, rkind):
            if side == "bool":
                raise ConditionError(f"'{token.text}' at {token.pos + 1} compares a condition, "
                                     "not a number (put the comparison in parentheses)")
        for node, side in ((left, kind), (right, rkind)):
            if side == "result":
                self._scalar(node)
        if self.peek().text in _COMPARISONS:
            extra = self.peek()
            raise ConditionError(f"chained comparison at {extra.pos + 1}; write "
                                 "result[0] >= A && result[0] <= B")
        return Cmp(token.text, left, right), "bool"

    def unary(self) -> tuple[Node, str]:
        token = self.peek()
        if token.text in ("!", "not"):
            self.take()
            operand, kind = self.unary()
            if kind != "bool":
                # expr-lang binds ! tighter than a comparison: `!result[0] > 1` negates a
                # number and is an error there, so it is not read as !(result[0] > 1).
                raise ConditionError(f"'{token.text}' at {token.pos + 1} negates a number; "
                                     "write !(result[0] > 1)")
            return Not(operand), "bool"
        if token.text == "-":
            self.take()
            number = self.peek()
            if number.kind != "num":
                raise ConditionError(f"uses arithmetic ('-' at {token.pos + 1}), which "
                                     "relconsole does not map onto a limit")
            self.take()
            return Num(-_number(number)), "num"
        return self.primary()

    def primary(self) -> tuple[Node, str]:
        token = self.take()
        if token.kind == "num":
            return Num(_number(token)), "num"
        if token.text == "(":
            node, kind = self.or_expr()
            self.expect(")")
            return node, kind
        if token.text == "#":
            if not self.in_all:
                raise ConditionError(f"'#' at {token.pos + 1} is only meaningful inside "
                                     "all(result, ...)")
            return Elem(), "num"
        if token.kind != "ident":
            raise ConditionError(f"unexpected {_shown(token)} at {token.pos + 1}")
        name = token.text
        if name == "result":
            return self.result_ref(token)
        if name == "len":
            self.expect("(")
            self.bare_result("len")
            self.expect(")")
            self.shapes.add("list")
            return Len(), "num"
        if name == "isNaN":
            self.expect("(")
            arg, kind = self.or_expr()
            self.expect(")")
            if kind == "result":
                self._scalar(arg)
            elif kind != "num":
                raise ConditionError("isNaN(...) takes a number, e.g. isNaN(result[0])")
            return IsNaN(arg), "bool"
        if name == "all":
            return self.all_call(token)
        if name in _ARGO_FUNCTIONS:
            raise ConditionError(f"uses {name}(...): {_ARGO_FUNCTIONS[name]}")
        if name in ("true", "false", "nil"):
            raise ConditionError(f"uses the constant '{name}', which limits nothing")
        if self.peek().text == "(":
            raise ConditionError(f"uses the function {name}(...), which relconsole does not "
                                 "map (only len, isNaN and all)")
        raise ConditionError(f"uses the name '{name}'; the only variable is result")

    def result_ref(self, token: Token) -> tuple[Node, str]:
        nxt = self.peek()
        if nxt.text == ".":
            self.take()
            field = self.peek().text or "…"
            raise ConditionError(
                f"reads result.{field}, a field of a structured result (the web or job "
                "providers'); a Prometheus result is a list of numbers")
        if nxt.text != "[":
            return Result(None), "result"
        self.take()
        index = self.take()
        if index.kind != "num" or not index.text.isdigit():
            raise ConditionError(f"result[...] at {token.pos + 1} needs a whole number index "
                                 "such as result[0]")
        self.expect("]")
        self.shapes.add("list")
        return Result(int(index.text)), "num"

    def bare_result(self, function: str) -> None:
        token = self.take()
        if token.text != "result" or self.peek().text in ("[", "."):
            raise ConditionError(f"{function}(...) at {token.pos + 1} takes result itself, "
                                 f"as in {function}(result)")

    def all_call(self, token: Token) -> tuple[Node, str]:
        if self.in_all:
            raise ConditionError(f"all(...) inside all(...) at {token.pos + 1}")
        self.expect("(")
        self.bare_result("all")
        self.expect(",")
        braced = self.peek().text == "{"
        if braced:
            self.take()
        self.in_all = True
        predicate, kind = self.or_expr()
        self.in_all = False
        if braced:
            self.expect("}")
        self.expect(")")
        if kind != "bool":
            raise ConditionError("all(result, ...) needs a condition on #, e.g. "
                                 "all(result, # < 1000)")
        self.shapes.add("list")
        return All(predicate), "bool"

    def _scalar(self, node: Node) -> None:
        if isinstance(node, Result) and node.index is None:
            self.shapes.add("scalar")

    def _need_bool(self, token: Token, left: str, right: str) -> None:
        if left != "bool" or right != "bool":
            raise ConditionError(f"'{token.text}' at {token.pos + 1} joins a number; both "
                                 "sides must be conditions")


def _number(token: Token) -> float:
    value = float(token.text)
    if not math.isfinite(value):
        raise ConditionError(f"the number {token.text} is too large")
    return value


def _shown(token: Token) -> str:
    return "the end" if token.kind == "end" else f"'{token.text}'"


@dataclass(frozen=True)
class Condition:
    """A parsed successCondition or failureCondition."""

    text: str
    tree: Node
    shapes: frozenset[Shape]


def parse_condition(text: str) -> Condition:
    """Parse one Argo condition, or raise ConditionError saying what is not supported.

    The grammar (expr-lang's syntax, restricted to what maps onto max/min):

        condition := or
        or        := and (("||" | "or") and)*
        and       := cmp (("&&" | "and") cmp)*
        cmp       := unary (("==" | "!=" | "<" | "<=" | ">" | ">=") unary)?
        unary     := ("!" | "not") unary | "-" NUMBER | primary
        primary   := NUMBER | "(" or ")" | result | result "[" INDEX "]" | "#"
                   | "len" "(" result ")" | "isNaN" "(" or ")"
                   | "all" "(" result "," ( or | "{" or "}" ) ")"
    """
    parser = _Parser(text)
    tree = parser.parse()
    if len(parser.shapes) > 1:
        raise ConditionError("uses result both as a list (result[0], len, all) and as a "
                             "single number; one of them always errors in Argo")
    return Condition(text, tree, frozenset(parser.shapes))


# ---------------------------------------------------------------------------- evaluate

ArgoResult = list[float] | float


def evaluate(node: Node, result: ArgoResult, elem: float | None = None) -> bool | float:
    """The node's value for a Prometheus result as Argo sees it ([v, ...] for a vector,
    v for a scalar), as expr-lang computes it: && and || short-circuit, comparisons with
    NaN are false (but != is true), and what expr-lang cannot evaluate raises EvalError."""
    match node:
        case Num(value):
            return value
        case Elem():
            if elem is None:
                raise EvalError("# outside all(...)")
            return elem
        case Result(None):
            if isinstance(result, list):
                raise EvalError("result is a list of numbers, not a number")
            return result
        case Result(index):
            assert index is not None
            if not isinstance(result, list):
                raise EvalError("result is a number, not a list")
            if index >= len(result):
                raise EvalError(f"index {index} out of range (len {len(result)})")
            return result[index]
        case Len():
            if not isinstance(result, list):
                raise EvalError("len of a number")
            return float(len(result))
        case IsNaN(arg):
            return math.isnan(_num(evaluate(arg, result, elem)))
        case All(predicate):
            if not isinstance(result, list):
                raise EvalError("all over a number")
            return all(_bool(evaluate(predicate, result, value)) for value in result)
        case Not(operand):
            return not _bool(evaluate(operand, result, elem))
        case And(left, right):
            return _bool(evaluate(left, result, elem)) and _bool(evaluate(right, result, elem))
        case Or(left, right):
            return _bool(evaluate(left, result, elem)) or _bool(evaluate(right, result, elem))
        case Cmp(op, left, right):
            a = _num(evaluate(left, result, elem))
            b = _num(evaluate(right, result, elem))
            return _compare(op, a, b)
    raise AssertionError(f"unknown node {node!r}")


def _compare(op: str, a: float, b: float) -> bool:
    # Python's float comparisons are IEEE 754's, like Go's: NaN is unordered.
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _num(value: bool | float) -> float:
    if isinstance(value, bool):
        raise EvalError("a condition where a number belongs")
    return value


def _bool(value: bool | float) -> bool:
    if not isinstance(value, bool):
        raise EvalError("a number where a condition belongs")
    return value


Phase = Literal["Successful", "Failed", "Inconclusive", "Error"]


def argo_phase(success: Condition | None, failure: Condition | None,
               result: ArgoResult) -> Phase:
    """One measurement's phase, as Argo's `EvaluateResult` decides it."""
    try:
        ok = _bool(evaluate(success.tree, result)) if success is not None else False
        bad = _bool(evaluate(failure.tree, result)) if failure is not None else False
    except EvalError:
        return "Error"
    if success is None and failure is None:
        return "Successful"
    if failure is None:
        bad = not ok
    elif success is None:
        ok = not bad
    if bad:
        return "Failed"
    return "Successful" if ok else "Inconclusive"


# ------------------------------------------------------------------------------ limits


@dataclass(frozen=True)
class _Sample:
    value: float
    where: str  # the range of values it stands for, in words


def _constants(node: Node) -> list[float]:
    match node:
        case Num(value):
            return [value]
        case IsNaN(arg):
            return _constants(arg)
        case All(predicate):
            return _constants(predicate)
        case Not(operand):
            return _constants(operand)
        case And(left, right) | Or(left, right) | Cmp(_, left, right):
            return _constants(left) + _constants(right)
    return []


def _second_series(node: Node) -> bool:
    match node:
        case Result(index):
            return index is not None and index > 0
        case IsNaN(arg):
            return _second_series(arg)
        case All(predicate):
            return _second_series(predicate)
        case Not(operand):
            return _second_series(operand)
        case And(left, right) | Or(left, right) | Cmp(_, left, right):
            return _second_series(left) or _second_series(right)
    return False


def _samples(constants: Sequence[float]) -> list[_Sample]:
    """One value per piece of the number line the constants cut it into.

    Every atom of the grammar compares the one value with a constant (or is constant
    itself for a single value), so a condition is constant on each open interval
    between neighbouring constants and may change only at a constant: one value from
    each interval and each constant itself decide it everywhere.
    """
    points = sorted({c + 0.0 for c in constants})  # + 0.0 makes -0.0 and 0.0 one point
    if not points:
        return [_Sample(0.0, "for every value")]
    out: list[_Sample] = []
    below = math.nextafter(points[0], -math.inf)
    if math.isfinite(below):
        out.append(_Sample(below, f"below {_fmt(points[0])}"))
    for i, point in enumerate(points):
        out.append(_Sample(point, f"at {_fmt(point)}"))
        upper = points[i + 1] if i + 1 < len(points) else math.inf
        inside = math.nextafter(point, math.inf)
        if inside < upper and math.isfinite(inside):
            where = (f"between {_fmt(point)} and {_fmt(upper)}" if math.isfinite(upper)
                     else f"above {_fmt(point)}")
            out.append(_Sample(inside, where))
    return out


def _fmt(value: float) -> str:
    """The shortest text that reads back as the same float: 0.01, 10, 1e-06."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass(frozen=True)
class Limits:
    min: float | None
    max: float | None
    # A strict comparison's threshold, which fails in Argo: the limit is the float next
    # to it (`result[0] < 10` -> max 9.999999999999998), None where the limit is written.
    min_open: float | None = None
    max_open: float | None = None
    # Where Argo calls a finite value Inconclusive (neither condition holds): between
    # these outer limits and min/max the gate is INCONCLUSIVE, beyond them it fails.
    inconclusive_min: float | None = None
    inconclusive_max: float | None = None

    @property
    def band(self) -> bool:
        return self.inconclusive_min is not None or self.inconclusive_max is not None


def limits_for(success: Condition | None, failure: Condition | None) -> Limits:
    """The min/max a relconsole gate needs to pass exactly the finite values Argo passes.

    relconsole judges one finite value per poll (safety rule 1 keeps NaN, ±Inf, an empty
    result and several series out: they are INCONCLUSIVE), and its gate passes exactly
    min <= value <= max. So the values Argo passes must be one closed range; the values
    where neither condition holds (Argo: Inconclusive, and the rollout pauses) may lie on
    either side of it, between it and the failing values (an inconclusive band, judged
    INCONCLUSIVE by the gate, so the release pauses as Argo's does); every other finite
    value must fail. Where both conditions hold Argo fails (failureCondition wins): that is
    refused as a condition no one meant. A strict comparison on the passing side
    (`result[0] < 10` passes, 10 fails) becomes the float just below 10 as max: exact,
    since relconsole's max is inclusive. Raises ConditionError otherwise.
    """
    shapes = (success.shapes if success else frozenset()) | (
        failure.shapes if failure else frozenset())
    if len(shapes) > 1:
        raise ConditionError("successCondition and failureCondition use result differently "
                             "(one as a list, one as a number); one of them always errors")
    scalar = "scalar" in shapes
    for condition in (success, failure):
        if condition is not None and _second_series(condition.tree):
            raise ConditionError(
                "reads a second series (result[1] or later); relconsole reads one series "
                "per query, and several are INCONCLUSIVE",
                "Aggregate the query to one series (sum(...)) and write the condition on "
                "result[0]")
    consts = (_constants(success.tree) if success else []) + (
        _constants(failure.tree) if failure else [])
    samples = _samples(consts)

    def shaped(v: float) -> ArgoResult:
        return v if scalar else [v]

    passes: list[bool] = []
    failing: list[bool] = []
    both: list[_Sample] = []
    for sample in samples:
        phase = argo_phase(success, failure, shaped(sample.value))
        if phase == "Error":
            raise ConditionError(f"Argo cannot evaluate it on a one-series result "
                                 f"({sample.where.removeprefix('for ')})")
        if success is not None and failure is not None:
            ok = _bool(evaluate(success.tree, shaped(sample.value)))
            bad = _bool(evaluate(failure.tree, shaped(sample.value)))
            if ok and bad:
                both.append(sample)
        passes.append(phase == "Successful")
        failing.append(phase == "Failed")
    if both:
        raise ConditionError(
            f"successCondition and failureCondition both hold "
            f"{', '.join(s.where for s in both[:3])} (Argo fails it: failureCondition wins)",
            "Write one of them, or make failureCondition the exact opposite of "
            "successCondition (result[0] <= 0.01 with result[0] > 0.01)")
    if not any(passes):
        raise ConditionError("no number passes it, so the gate could never pass")
    if all(passes):
        raise ConditionError("every number passes it, so it limits nothing relconsole "
                             "judges (no data is always INCONCLUSIVE in relconsole)")
    first = passes.index(True)
    last = len(passes) - 1 - passes[::-1].index(True)
    if not all(passes[first:last + 1]):
        gap = next(s for s, p in zip(samples[first:last + 1], passes[first:last + 1],
                                     strict=True) if not p)
        raise ConditionError(f"passes values on both sides of a failing range ({gap.where}); "
                             "relconsole's gate passes one range, min <= value <= max")
    lower, lower_open = _bound(samples, first, -1)
    upper, upper_open = _bound(samples, last, +1)
    # The values that do not fail (passing, or Inconclusive beside the passing range)
    # must be one range too: a value Argo calls Inconclusive between two failing ones,
    # or beyond a failing one, is no band relconsole can judge.
    kept = [not f for f in failing]
    lo = kept.index(True)
    hi = len(kept) - 1 - kept[::-1].index(True)
    if not all(kept[lo:hi + 1]):
        gap = next(s for s, k in zip(samples[lo:hi + 1], kept[lo:hi + 1], strict=True)
                   if not k)
        raise ConditionError(f"Argo calls values Inconclusive on both sides of a failing "
                             f"range ({gap.where}); relconsole's gate has one band")
    band_lower = _bound(samples, lo, -1)[0] if lo < first else None
    band_upper = _bound(samples, hi, +1)[0] if hi > last else None
    if lo < first and band_lower is None:
        band_lower = -math.inf  # Inconclusive all the way down: it never fails below
    if hi > last and band_upper is None:
        band_upper = math.inf
    return Limits(min=lower, max=upper, min_open=lower_open, max_open=upper_open,
                  inconclusive_min=band_lower, inconclusive_max=band_upper)


def _bound(samples: Sequence[_Sample], edge: int,
           step: int) -> tuple[float | None, float | None]:
    """(the inclusive limit at one end of the passing run, the failing threshold it
    stands next to); (None, None) where that side has no limit."""
    outside = edge + step
    if outside < 0 or outside >= len(samples):
        return None, None
    if samples[edge].where.startswith("at "):
        return samples[edge].value, None  # the constant passes: inclusive, as relconsole's
    # The passing piece is the open interval next to a failing constant: the limit is the
    # last float inside it, so the constant itself fails as in Argo.
    threshold = samples[outside].value
    return math.nextafter(threshold, math.inf if step < 0 else -math.inf), threshold


# ---------------------------------------------------------------------------- template


@dataclass(frozen=True)
class MetricImport:
    """One imported metric's Argo settings, and how each became relconsole's."""

    metric: str
    interval: str | None  # as written, args substituted; None: a single measurement
    interval_seconds: float | None
    count: int | None  # as written; None when not written
    effective_count: int | None  # Argo's: 1 with neither interval nor count; None: no end
    failure_limit: int  # Argo's failureLimit (default 0)
    inconclusive_limit: int  # Argo's inconclusiveLimit (default 0)
    consecutive_error_limit: int  # Argo's consecutiveErrorLimit (default 4)
    address: str  # provider.prometheus.address (relconsole uses providers.metrics.url)
    query_args: tuple[str, ...]  # the args the query uses: they select what is measured
    versioned: bool  # the query holds relconsole's {{version}} (from an arg given so)
    mapping: tuple[str, ...]  # how each setting maps, one sentence each


@dataclass(frozen=True)
class Imported:
    template: str
    kind: str
    metrics: tuple[MetricSpec, ...]
    gates: tuple[GateSpec, ...]
    details: tuple[MetricImport, ...]


@dataclass
class _Context:
    kind: str
    name: str
    problems: list[str]

    def add(self, metric: str | None, what: str, text: object, problem: str,
            instead: str) -> None:
        where = f"{self.kind} {self.name}"
        if metric is not None:
            where += f": metric '{metric}'"
        quoted = f" {_quote(text)}" if text is not None else ""
        instead = instead.rstrip(".")
        self.problems.append(f"{where}: {what}{quoted}: {problem.rstrip('.')}. {instead}.")


def _quote(text: object) -> str:
    shown = " ".join(str(text).split())
    if len(shown) > 160:
        shown = shown[:157] + "..."
    return f'"{shown}"'


def gates_from_template(template: Mapping[str, Any], *,
                        args: Mapping[str, str] | None = None) -> Imported:
    """The metrics and gates that judge what `template`'s Prometheus metrics judge.

    `args` are the values the Rollout passes (its `analysis.args`, already resolved:
    a pod-template hash, a service name); they win over the template's own
    `args[].value`, as in Argo. Every `{{args.NAME}}` is substituted once. Argo has no
    `{{version}}`; a query that should follow relconsole's canary/baseline version gets
    it only when the caller says so, by passing the value "{{version}}" for the arg that
    carries the version label — that is correct only if the series' label holds the
    version relconsole knows (versions.canary / versions.baseline), which this function
    cannot know, so it never guesses. An arg that selects the canary some other way
    (a pod-template hash) stays a fixed value, and `MetricImport.query_args` /
    `mapping` say so.

    Raises TemplateError with every problem of the template, one message each.
    """
    if not isinstance(template, Mapping):
        raise TemplateError(["AnalysisTemplate: the template is not a mapping. Pass the "
                             "AnalysisTemplate object as the Kubernetes API returns it."])
    kind = str(template.get("kind") or "AnalysisTemplate")
    meta = template.get("metadata")
    name = str(meta.get("name") or "(unnamed)") if isinstance(meta, Mapping) else "(unnamed)"
    ctx = _Context(kind, name, [])
    if kind not in KINDS:
        ctx.add(None, "kind", kind, "is not an AnalysisTemplate",
                "Import an AnalysisTemplate or a ClusterAnalysisTemplate")
    api = template.get("apiVersion")
    if api is not None and not str(api).startswith("argoproj.io/"):
        ctx.add(None, "apiVersion", api, "is not Argo Rollouts' (argoproj.io/...)",
                "Import an argoproj.io/v1alpha1 AnalysisTemplate")
    spec = template.get("spec")
    if not isinstance(spec, Mapping):
        ctx.add(None, "spec", None, "is missing or not a mapping",
                "Import a template with spec.metrics")
        raise TemplateError(ctx.problems)
    if spec.get("templates"):
        ctx.add(None, "spec.templates", None,
                "refers to other templates, which this import cannot read",
                "Import each referenced template on its own")
    raw_metrics = spec.get("metrics")
    if not isinstance(raw_metrics, list) or not raw_metrics:
        ctx.add(None, "spec.metrics", None, "is missing or empty",
                "Import a template with at least one Prometheus metric")
        raise TemplateError(ctx.problems)
    values = _arg_values(spec.get("args"), args or {}, ctx)
    dry = _dry_run_patterns(spec.get("dryRun"), ctx)

    metrics: list[MetricSpec] = []
    gates: list[GateSpec] = []
    details: list[MetricImport] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_metrics):
        if not isinstance(raw, Mapping) or not str(raw.get("name") or "").strip():
            ctx.add(None, f"spec.metrics[{index}]", None, "has no name",
                    "Give every metric a name")
            continue
        metric = str(raw["name"])
        if metric in seen:
            ctx.add(metric, "name", metric, "is used by two metrics",
                    "Give every metric its own name")
            continue
        seen.add(metric)
        found = _metric(raw, metric, values, dry, ctx)
        if found is not None:
            metrics.append(found[0])
            gates.append(found[1])
            details.append(found[2])
    if ctx.problems:
        raise TemplateError(ctx.problems)
    return Imported(template=name, kind=kind, metrics=tuple(metrics), gates=tuple(gates),
                    details=tuple(details))


@dataclass(frozen=True)
class _Arg:
    value: str | None
    secret: bool = False


def _arg_values(raw: object, given: Mapping[str, str], ctx: _Context) -> dict[str, _Arg]:
    """Each declared arg's value: the caller's, else the template's own. As in Argo's
    MergeArgs, an arg the template does not declare is not used (a Rollout passes the
    same args to all its templates)."""
    out: dict[str, _Arg] = {}
    if raw is None:
        return out
    if not isinstance(raw, list):
        ctx.add(None, "spec.args", None, "is not a list", "Write args as [{name: ...}]")
        return out
    for entry in raw:
        if not isinstance(entry, Mapping) or not entry.get("name"):
            ctx.add(None, "spec.args", None, "has an entry without a name",
                    "Give every arg a name")
            continue
        arg = str(entry["name"])
        if arg in given:
            out[arg] = _Arg(str(given[arg]))
            continue
        value = entry.get("value")
        secret = isinstance(entry.get("valueFrom"), Mapping) and (
            "secretKeyRef" in entry["valueFrom"])
        if value is None or isinstance(value, bool):
            out[arg] = _Arg(None, secret)
        else:
            out[arg] = _Arg(str(value))
    return out


def _dry_run_patterns(raw: object, ctx: _Context) -> list[re.Pattern[str]]:
    out: list[re.Pattern[str]] = []
    if not isinstance(raw, list):
        return out
    for entry in raw:
        name = entry.get("metricName") if isinstance(entry, Mapping) else None
        if not name:
            continue
        try:
            # Argo matches with Go's regexp.MatchString: unanchored, like re.search.
            out.append(re.compile(str(name)))
        except re.error:
            ctx.add(None, "spec.dryRun", name, "is not a regular expression this import reads",
                    "Name the dry-run metrics plainly")
    return out


def _substitute(text: str, values: Mapping[str, _Arg], metric: str, what: str,
                ctx: _Context) -> tuple[str | None, tuple[str, ...]]:
    """`text` with every {{args.NAME}} replaced, once (a value is not read again, so a
    value "{{version}}" stays relconsole's placeholder); None when a tag cannot be
    resolved (each problem added). Also gives the args used."""
    out: list[str] = []
    used: list[str] = []
    told: set[str] = set()  # a tag written twice is one problem, told once
    pos = 0
    ok = True
    while True:
        start = text.find("{{", pos)
        if start < 0:
            out.append(text[pos:])
            break
        end = text.find("}}", start + 2)
        if end < 0:
            ctx.add(metric, what, text, "has a {{ with no }}",
                    "Close the placeholder: {{args.NAME}}")
            return None, ()
        out.append(text[pos:start])
        tag = text[start + 2:end].strip()
        pos = end + 2
        if tag in told:
            continue
        if not tag.startswith("args."):
            told.add(tag)
            hint = ("Argo has no {{version}}: declare an arg for the version label and pass "
                    "args={'NAME': '{{version}}'} where the label holds relconsole's version"
                    if tag == "version" else
                    "Use {{args.NAME}} placeholders only, with NAME declared in spec.args")
            ctx.add(metric, what, text, f"has the placeholder {{{{{tag}}}}}, which Argo "
                    "cannot resolve", hint)
            ok = False
            continue
        arg = tag[len("args."):]
        found = values.get(arg)
        if found is None or found.value is None:
            told.add(tag)
        if found is None:
            ctx.add(metric, what, text, f"uses args.{arg}, which the template does not "
                    "declare", f"Declare it in spec.args ({{name: {arg}}})")
            ok = False
            continue
        if found.value is None:
            source = (" (it comes from a Secret, valueFrom.secretKeyRef, which this import "
                      "does not read)" if found.secret else "")
            ctx.add(metric, what, text, f"needs args.{arg}, which has no value{source}",
                    f"Pass it: args={{'{arg}': ...}}, as the Rollout's analysis.args does")
            ok = False
            continue
        used.append(arg)
        out.append(found.value)
    if not ok:
        return None, ()
    return "".join(out), tuple(dict.fromkeys(used))


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
             "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def _go_duration(text: str) -> float | None:
    """Seconds in a Go duration (time.ParseDuration: 5m, 1h30m, 500ms), or None."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _GO_PART.match(text, pos)
        if match is None:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    return total if pos else None


def _int_field(raw: Mapping[str, Any], key: str, default: int | None,
               values: Mapping[str, _Arg], metric: str, ctx: _Context) -> tuple[bool, int | None]:
    """An IntOrString field (count, failureLimit, ...): (readable, value)."""
    value = raw.get(key)
    if value is None:
        return True, default
    if isinstance(value, bool):
        ctx.add(metric, key, value, "is not a whole number", f"Write {key}: 3")
        return False, None
    if isinstance(value, int):
        return True, value
    text, _ = _substitute(str(value), values, metric, key, ctx)
    if text is None:
        return False, None
    text = text.strip()
    if not re.fullmatch(r"-?\d+", text):
        # Argo's IntOrString.IntValue() would read this as 0 without a word.
        ctx.add(metric, key, value, "is not a whole number", f"Write {key}: 3")
        return False, None
    return True, int(text)


def _metric(raw: Mapping[str, Any], metric: str, values: Mapping[str, _Arg],
            dry: Sequence[re.Pattern[str]], ctx: _Context
            ) -> tuple[MetricSpec, GateSpec, MetricImport] | None:
    before = len(ctx.problems)
    provider = raw.get("provider")
    kinds = [str(k) for k in provider] if isinstance(provider, Mapping) else []
    prom = provider.get("prometheus") if isinstance(provider, Mapping) else None
    if kinds != ["prometheus"] or not isinstance(prom, Mapping):
        shown = ", ".join(kinds) if kinds else "none"
        ctx.add(metric, "provider", shown, "is not the Prometheus provider", INSTEAD_PROVIDER)
        return None
    if any(p.search(metric) for p in dry):
        ctx.add(metric, "dryRun", metric,
                "runs in dry-run mode, which never affects the rollout; relconsole has no "
                "dry-run gate, and a gate would roll back",
                "Take it out of spec.dryRun to import it as a gate, or leave it to Argo")
    if prom.get("rangeQuery"):
        ctx.add(metric, "provider.prometheus.rangeQuery", None,
                "is a range query; relconsole sends instant queries and judges one value",
                "Drop rangeQuery and write the condition on result[0]")

    query_raw = prom.get("query")
    query: str | None = None
    query_args: tuple[str, ...] = ()
    if not isinstance(query_raw, str) or not query_raw.strip():
        ctx.add(metric, "provider.prometheus.query", None, "is missing",
                "Give the metric a PromQL query")
    else:
        query, query_args = _substitute(query_raw, values, metric,
                                        "provider.prometheus.query", ctx)
    address_raw = prom.get("address")
    address = ""
    if isinstance(address_raw, str):
        address = _substitute(address_raw, values, metric, "provider.prometheus.address",
                              ctx)[0] or ""

    success, failure, limits = _conditions(raw, metric, values, ctx)

    ok_f, failure_limit = _int_field(raw, "failureLimit", 0, values, metric, ctx)
    ok_i, inconclusive_limit = _int_field(raw, "inconclusiveLimit", 0, values, metric, ctx)
    ok_e, error_limit = _int_field(raw, "consecutiveErrorLimit",
                                   DEFAULT_CONSECUTIVE_ERROR_LIMIT, values, metric, ctx)
    ok_s, success_limit = _int_field(raw, "consecutiveSuccessLimit", 0, values, metric, ctx)
    ok_c, count = _int_field(raw, "count", None, values, metric, ctx)
    if ok_f and failure_limit is not None and failure_limit < 0:
        if failure_limit == -1:
            ctx.add(metric, "failureLimit", raw.get("failureLimit"),
                    "-1 turns failures off (the metric only waits for "
                    "consecutiveSuccessLimit); a relconsole gate always acts on failures",
                    "Set failureLimit: 0 or more to import it as a gate")
        else:
            ctx.add(metric, "failureLimit", raw.get("failureLimit"), "is below -1",
                    "Set failureLimit: 0 or more")
    if ok_s and success_limit:
        ctx.add(metric, "consecutiveSuccessLimit", raw.get("consecutiveSuccessLimit"),
                "ends the metric after that many successes in a row; relconsole's gates "
                "judge every poll of a step's bake and have no such limit",
                "Remove consecutiveSuccessLimit (or set it to 0) to import the metric")
    for key, ok, value in (("inconclusiveLimit", ok_i, inconclusive_limit),
                           ("consecutiveErrorLimit", ok_e, error_limit)):
        if ok and value is not None and value < 0:
            ctx.add(metric, key, raw.get(key), "is negative", f"Set {key}: 0 or more")

    interval_text: str | None = None
    interval_seconds: float | None = None
    if raw.get("interval") not in (None, ""):
        interval_text, _ = _substitute(str(raw["interval"]), values, metric, "interval", ctx)
        if interval_text is not None:
            interval_seconds = _go_duration(interval_text.strip())
            if interval_seconds is None or interval_seconds <= 0:
                ctx.add(metric, "interval", raw["interval"],
                        "is not a positive Go duration", "Write interval: 5m")
    if ok_c and count is not None:
        if count < 0:
            ctx.add(metric, "count", raw.get("count"), "is negative",
                    "Write count: 5, or leave it out")
        elif count > 1 and interval_text is None:
            ctx.add(metric, "count", raw.get("count"),
                    "is above 1 with no interval, which Argo rejects",
                    "Add interval: 5m, or leave count out")
    effective = _effective_count(count, interval_text)
    count_ok = ok_c and (count is None or 0 <= count <= 1 or interval_text is not None)
    if (ok_f and count_ok and failure_limit is not None and failure_limit >= 0
            and effective is not None and failure_limit >= effective):
        # failed <= count <= failureLimit: Argo can never fail it, a dry run in effect.
        ctx.add(metric, "failureLimit", raw.get("failureLimit", 0),
                f"is at least the {effective} measurement(s) Argo takes, so Argo can never "
                "fail this metric; a relconsole gate would act on it",
                f"Set failureLimit below {effective} (or raise count) to import it as a gate")
    if len(ctx.problems) > before or limits is None or query is None:
        return None
    assert failure_limit is not None and inconclusive_limit is not None
    assert error_limit is not None
    versioned = VERSION.search(query) is not None
    relconsole_inconclusive, inconclusive_words = _inconclusive_mapping(
        success, failure, inconclusive_limit, error_limit)
    mapping = (
        _condition_words(raw, limits),
        _failure_words(failure_limit, interval_text),
        inconclusive_words,
        *_special_words(success, failure),
        _interval_words(interval_text, count, effective),
        _query_words(query_args, values, versioned),
        *_provider_words(prom, raw),
    )
    spec = MetricSpec(name=metric, query=query.strip(), values_why=VALUES_WHY,
                      canary_only=not versioned)
    if limits.band:
        # Argo pauses the rollout on the (inconclusiveLimit + 1)th Inconclusive
        # measurement; relconsole pauses after that many INCONCLUSIVE polls in a row.
        relconsole_inconclusive = min(relconsole_inconclusive, inconclusive_limit + 1)
    gate = GateSpec(metric=metric, max=limits.max, min=limits.min,
                    failure_limit=failure_limit + 1,
                    inconclusive_limit=relconsole_inconclusive,
                    inconclusive_min=limits.inconclusive_min,
                    inconclusive_max=limits.inconclusive_max)
    detail = MetricImport(
        metric=metric, interval=interval_text, interval_seconds=interval_seconds, count=count,
        effective_count=effective, failure_limit=failure_limit,
        inconclusive_limit=inconclusive_limit, consecutive_error_limit=error_limit,
        address=address, query_args=query_args, versioned=versioned, mapping=mapping)
    return spec, gate, detail


CONDITIONS = ("successCondition", "failureCondition")


def _conditions(raw: Mapping[str, Any], metric: str, values: Mapping[str, _Arg],
                ctx: _Context) -> tuple[Condition | None, Condition | None, Limits | None]:
    """The parsed conditions and the limits they make; limits None after any problem."""
    written = {k: raw[k] for k in CONDITIONS if raw.get(k) not in (None, "")}
    if not written:
        ctx.add(metric, "successCondition", None,
                "is missing, and so is failureCondition: Argo counts every measurement "
                "successful, so the metric gates nothing",
                "Add successCondition: result[0] <= N (or >= N) to import it as a gate")
        return None, None, None
    parsed: dict[str, Condition] = {}
    for key, text in written.items():
        if not isinstance(text, str):
            ctx.add(metric, key, text, "is not an expression", INSTEAD_CONDITION)
            continue
        resolved, _ = _substitute(text, values, metric, key, ctx)
        if resolved is None:
            continue
        try:
            parsed[key] = parse_condition(resolved)
        except ConditionError as exc:
            ctx.add(metric, key, text, exc.problem, exc.instead)
    success, failure = parsed.get(CONDITIONS[0]), parsed.get(CONDITIONS[1])
    if len(parsed) < len(written):
        return success, failure, None
    try:
        return success, failure, limits_for(success, failure)
    except ConditionError as exc:
        ctx.add(metric, " and ".join(written), " / ".join(str(v) for v in written.values()),
                exc.problem, exc.instead)
        return success, failure, None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _effective_count(count: int | None, interval: str | None) -> int | None:
    # Argo's Metric.EffectiveCount: no count (or 0) and no interval is one measurement;
    # an interval without a count measures until the run ends.
    if count is None or count == 0:
        return 1 if interval is None else None
    return count


def _inconclusive_mapping(success: Condition | None, failure: Condition | None,
                          inconclusive: int, errors: int) -> tuple[int, str]:
    """relconsole's inconclusive_limit: the polls in a row without a usable value (no
    data, NaN, ±Inf, an error) before the release pauses.

    In Argo those are measurement Errors (no data makes `result[0]` fail; a provider
    error), counted in a row against consecutiveErrorLimit: the same count, so
    inconclusive_limit = consecutiveErrorLimit + 1. Where Argo would instead call NaN,
    ±Inf or an empty result Inconclusive (both conditions false), those count against
    inconclusiveLimit over the whole run, and relconsole must stop no later, so the
    smaller limit applies. The outcome differs by design: Argo aborts on Error,
    relconsole pauses for a human (safety rule 1), which never rolls back on no data.
    """
    specials = _special_phases(success, failure)
    inconclusive_cases = [k for k, v in specials.items() if v == "Inconclusive"]
    limit = errors + 1
    words = (f"consecutiveErrorLimit {errors} → inconclusive_limit {errors + 1}: Argo errors "
             f"the metric on the {_ordinal(errors + 1)} measurement Error in a row (no data, "
             "an unreachable Prometheus); relconsole calls each such poll INCONCLUSIVE and "
             f"pauses the release after {errors + 1} in a row. Argo would abort there; "
             "relconsole pauses for a human, since no data is evidence neither way "
             "(safety rule 1).")
    if inconclusive_cases and inconclusive < errors:
        limit = inconclusive + 1
        words += (f" Argo calls {', '.join(inconclusive_cases)} Inconclusive and pauses on "
                  f"the {_ordinal(limit)} such measurement (inconclusiveLimit {inconclusive},"
                  f" counted over the run), so inconclusive_limit is {limit}: relconsole "
                  "stops no later.")
    else:
        words += (f" inconclusiveLimit {inconclusive} is kept only in MetricImport: "
                  + ("with these conditions Argo never calls a measurement Inconclusive."
                     if not inconclusive_cases else
                     f"it is not below consecutiveErrorLimit, so {errors + 1} is the earlier "
                     "stop."))
    return limit, words


def _special_phases(success: Condition | None, failure: Condition | None) -> dict[str, Phase]:
    """What Argo makes of the results relconsole never judges (safety rule 1)."""
    shapes = (success.shapes if success else frozenset()) | (
        failure.shapes if failure else frozenset())
    if "scalar" in shapes:
        cases: dict[str, ArgoResult] = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}
    else:
        cases = {"an empty result": [], "NaN": [math.nan], "+Inf": [math.inf],
                 "-Inf": [-math.inf]}
    return {name: argo_phase(success, failure, value) for name, value in cases.items()}


def _special_words(success: Condition | None, failure: Condition | None) -> list[str]:
    # isNaN(...) and len(result) only decide what Argo does with NaN and an empty result.
    # relconsole needs no such guard: NaN, ±Inf and no data are INCONCLUSIVE, never PASS
    # nor FAIL (safety rule 1), so those parts of a condition map onto that rule rather
    # than onto a limit, and these sentences say where Argo differed.
    words: list[str] = []
    for name, phase in _special_phases(success, failure).items():
        if phase == "Successful":
            words.append(f"Argo passes {name}; relconsole never does: it is INCONCLUSIVE "
                         "(safety rule 1), and pauses the release past inconclusive_limit.")
        elif phase == "Failed":
            words.append(f"Argo counts {name} as a failure; relconsole calls it INCONCLUSIVE "
                         "(safety rule 1): it pauses past inconclusive_limit, never rolls "
                         "back on it.")
        elif phase == "Error":
            words.append(f"On {name} Argo cannot evaluate the condition (a measurement "
                         "Error); relconsole calls it INCONCLUSIVE.")
        else:
            words.append(f"Argo calls {name} Inconclusive; so does relconsole.")
    return words


def _condition_words(raw: Mapping[str, Any], limits: Limits) -> str:
    shown = " and ".join(f"{k} {_quote(raw[k])}" for k in CONDITIONS
                         if raw.get(k) not in (None, ""))
    parts = []
    if limits.min is not None:
        parts.append(f"min {_fmt(limits.min)}")
    if limits.max is not None:
        parts.append(f"max {_fmt(limits.max)}")
    text = f"{shown} → {' and '.join(parts)}: the gate passes exactly the values Argo passes."
    for side, threshold in (("min", limits.min_open), ("max", limits.max_open)):
        if threshold is not None:
            text += (f" Argo fails {_fmt(threshold)} itself and relconsole's {side} is "
                     f"inclusive, so {side} is the float next to {_fmt(threshold)} (shown "
                     f"rounded, as {threshold:g}).")
    for side, edge, outer in (("min", limits.min, limits.inconclusive_min),
                              ("max", limits.max, limits.inconclusive_max)):
        if outer is not None and edge is not None:
            beyond = "below" if side == "min" else "above"
            if math.isfinite(outer):
                text += (f" Between {_fmt(outer)} and {side} {_fmt(edge)} neither condition "
                         "holds and Argo calls the measurement Inconclusive (it pauses the "
                         "rollout): the gate is INCONCLUSIVE there, and fails only "
                         f"{beyond} {_fmt(outer)}.")
            else:
                text += (f" Everywhere {beyond} {side} {_fmt(edge)} neither condition holds "
                         "and Argo calls the measurement Inconclusive (it pauses the "
                         "rollout): the gate is INCONCLUSIVE there, never failing.")
    return text


def _failure_words(failure_limit: int, interval: str | None) -> str:
    n = failure_limit + 1
    nth = _ordinal(n)
    every = f"every {interval}" if interval else "once"
    if failure_limit == 0:
        return (f"failureLimit 0 → failure_limit 1: Argo fails the metric on its first failed "
                f"measurement (failed > 0), relconsole trips the gate on its first failing "
                f"poll. Argo measures {every}; relconsole judges every poll "
                "(release.poll_interval).")
    return (f"failureLimit {failure_limit} → failure_limit {n}: Argo fails the metric when "
            f"failed measurements exceed {failure_limit} (on the {nth}), counted over the "
            f"whole run; relconsole trips the gate after {n} failing polls in a row (a "
            f"passing poll starts the count again, an inconclusive one neither adds nor "
            f"resets). {n} failures in a row trip both; failures scattered between passes "
            f"trip Argo but not relconsole. Argo measures {every}; relconsole judges every "
            "poll (release.poll_interval), so the failures add up sooner.")


def _interval_words(interval: str | None, count: int | None, effective: int | None) -> str:
    if effective is None:
        return (f"interval {interval} with no count: Argo measures until the run ends; a "
                "relconsole gate judges every poll of every step, which is the same span.")
    return (f"interval {interval or '(none)'}, count {count if count is not None else '(none)'}:"
            f" Argo takes {effective} measurement(s) and then stops judging; relconsole has "
            "no measurement count and judges every poll of the step's bake, so it keeps "
            "watching where Argo stopped.")


def _query_words(used: Sequence[str], values: Mapping[str, _Arg], versioned: bool) -> str:
    shown = ", ".join(f"args.{a}={_quote(values[a].value)}" for a in used
                      if values[a].value != "{{version}}")
    if versioned:
        text = ("the query holds relconsole's {{version}} (from an arg given as "
                "'{{version}}'): relconsole sends it once with the canary's version and once "
                "with the baseline's.")
        return text + (f" It also selects by {shown}, fixed." if shown else "")
    if shown:
        return (f"the query selects by {shown}, kept as the fixed value it was given (it is "
                "not relconsole's {{version}}): the canary and the baseline read the same "
                "series. relconsole's Prometheus adapter asks for {{version}} in every query; "
                "pass args={'NAME': '{{version}}'} only where that label holds the version "
                "relconsole knows.")
    return ("the query selects no version: the canary and the baseline read the same series, "
            "and relconsole's Prometheus adapter asks for {{version}} in every query.")


def _provider_words(prom: Mapping[str, Any], raw: Mapping[str, Any]) -> list[str]:
    words = ["provider.prometheus.address is not imported: relconsole queries "
             "providers.metrics.url (MetricImport.address says which server Argo used)."]
    skipped = [k for k in ("headers", "authentication", "timeout", "insecure") if k in prom]
    if skipped:
        words.append(f"provider.prometheus {', '.join(skipped)} not imported: "
                     "providers.metrics sets how relconsole reaches Prometheus.")
    if raw.get("initialDelay"):
        words.append(f"initialDelay {raw['initialDelay']} not imported: relconsole judges "
                     "from the step's first poll.")
    return words
