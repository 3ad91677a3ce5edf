"""pydantic's validation errors, told in the file's own words: (problem, hint) per error.

A pydantic dump names types and quotes input; a user needs "must be a whole number,
not '10%'. Write the canary's percentage of traffic as a whole number". Values under
`providers:` may be secrets, so there an error says what kind of value it got, never
the value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from relconsole.config.errors import ConfigError, KeyPath, format_key, line_near
from relconsole.config.schema import (
    EXAMPLES,
    HEALTH_ROLES,
    MIGRATION_PHASES,
    MODELS,
    STRATEGIES,
    lookup,
)
from relconsole.durations import DURATION_HINT
from relconsole.suggest import clip, describe, did_you_mean, one_line

# Type errors whose input was nothing at all: `service:` with no value.
_NO_VALUE_KINDS = frozenset(
    {
        "string_type",
        "int_type",
        "float_type",
        "bool_type",
        "model_type",
        "dict_type",
        "list_type",
        "model_attributes_type",
    }
)
_DURATION_KEYS = ("poll_interval", "call_timeout", "stale_after", "retry_max")
_BOUNDS = {
    "greater_than_equal": "at least {ge}",
    "less_than_equal": "at most {le}",
    "greater_than": "greater than {gt}",
    "less_than": "less than {lt}",
}


def shape(value: Any) -> str:
    """Like describe(), without echoing text (for places that may hold secrets)."""
    if isinstance(value, str):
        return "text"
    return describe(value)


@dataclass(frozen=True)
class _Error:
    """One pydantic error, with what every explanation needs worked out once."""

    kind: str
    loc: KeyPath
    ctx: dict[str, Any]
    value: Any
    msg: str

    @property
    def name(self) -> str:
        return str(self.loc[-1]) if self.loc else ""

    @property
    def got(self) -> str:
        in_providers = bool(self.loc) and self.loc[0] == "providers"
        return shape(self.value) if in_providers else describe(self.value)

    @property
    def example(self) -> str | None:
        return lookup(EXAMPLES, self.loc)

    @property
    def like(self) -> str:
        return f" like `{self.example}`" if self.example else ""


def _missing(e: _Error) -> tuple[str, str]:
    parent = format_key(e.loc[:-1]) or "the top level"
    hint = f"Add `{e.example}` under {parent}" if e.example else f"Add {e.name}: under {parent}"
    if e.loc == ("providers", "traffic"):
        hint = (
            "Add a traffic provider, e.g. traffic: {type: sim} (or haproxy, argo-rollouts, command)"
        )
    if e.loc == ("release", "steps"):
        hint = f"Add {e.example}; the last step's weight must be 100"
    if len(e.loc) == 1:
        return f"required section '{e.name}' is missing", f"Add a top-level `{e.example}` section"
    return f"required key '{e.name}' is missing", hint


def _extra(e: _Error) -> tuple[str, str]:
    model = lookup(MODELS, e.loc[:-1])
    known = list(model.model_fields) if model else []
    hint = did_you_mean(e.name, known)
    if known:
        hint = f"{hint} Known keys here: {', '.join(known)}".strip()
    return f"unknown key '{clip(e.name)}'", hint


def _whole_number(e: _Error) -> tuple[str, str]:
    hint = "Write a whole number"
    if e.name == "weight":
        hint = "Write the canary's percentage of traffic as a whole number, e.g. weight: 10"
    return f"must be a whole number, not {e.got}", hint


def _literal(e: _Error) -> tuple[str, str]:
    allowed: tuple[str, ...] = ()
    if e.name == "strategy":
        allowed = STRATEGIES
    elif e.name == "health":
        allowed = HEALTH_ROLES
    elif e.name == "phase":  # a migration's
        allowed = MIGRATION_PHASES
    close = did_you_mean(str(e.value), allowed)
    return f"{e.got} is not allowed", f"{close} Use one of: {', '.join(allowed)}".strip()


def _bound(e: _Error) -> tuple[str, str]:
    if e.name == "weight":
        return (
            f"weight must be between 0 and 100, not {e.got}",
            "A weight is the canary's percentage of traffic",
        )
    limits = {k: f"{v:g}" if isinstance(v, float) else v for k, v in e.ctx.items()}
    what = _BOUNDS[e.kind].format(**limits)
    if e.name in _DURATION_KEYS:
        return f"must be {what}, not {e.got}", "Use a positive duration such as 5s"
    return f"must be {what}, not {e.got}", f"Use a value {what}"


def _by_words(problem: str, hint: str) -> Callable[[_Error], tuple[str, str]]:
    """An explanation that only fills in what the value was and what it should look like."""
    return lambda e: (problem.format(got=e.got), hint.format(like=e.like))


_EXPLAIN: dict[str, Callable[[_Error], tuple[str, str]]] = {
    "missing": _missing,
    "extra_forbidden": _extra,
    "duration": lambda e: (str(e.ctx.get("problem", e.msg)), str(e.ctx.get("hint", DURATION_HINT))),
    "url": lambda e: (f"{e.ctx['problem']}, not {e.got}", str(e.ctx["hint"])),
    "min_up": lambda e: (f"{e.ctx['problem']}, not {e.got}", str(e.ctx["hint"])),
    "argv": lambda e: (str(e.ctx["problem"]), str(e.ctx["hint"])),
    "bool_not_number": lambda e: (
        str(e.ctx["problem"]),
        "Write a number" + (f", e.g. `{e.example}`" if e.example else ""),
    ),
    "string_type": _by_words("must be text, not {got}", "Quote the value"),
    "string_too_short": _by_words("must not be empty", "Give it a value{like}"),
    "int_type": _whole_number,
    "int_parsing": _whole_number,
    "int_from_float": _whole_number,
    "float_type": _by_words("must be a number, not {got}", "Write a plain number such as 0.01"),
    "float_parsing": _by_words("must be a number, not {got}", "Write a plain number such as 0.01"),
    "finite_number": _by_words("must be a finite number", "Write a plain number such as 0.01"),
    "bool_type": _by_words("must be true or false, not {got}", "Write true or false"),
    "bool_parsing": _by_words("must be true or false, not {got}", "Write true or false"),
    "model_type": _by_words("must be a mapping (key: value), not {got}", "Write it{like}"),
    "dict_type": _by_words("must be a mapping (key: value), not {got}", "Write it{like}"),
    "model_attributes_type": _by_words(
        "must be a mapping (key: value), not {got}", "Write it{like}"
    ),
    "list_type": _by_words("must be a list, not {got}", "Write it{like}"),
    "literal_error": _literal,
    **dict.fromkeys(_BOUNDS, _bound),
}


def explain(err: ErrorDetails) -> tuple[str, str]:
    """(problem, hint) in words, for one pydantic error."""
    e = _Error(
        kind=err["type"],
        loc=tuple(err["loc"]),
        ctx=err.get("ctx") or {},
        value=err.get("input"),
        msg=err.get("msg", "is not valid"),
    )
    if e.value is None and e.kind in _NO_VALUE_KINDS:
        return "has no value", f"Give it a value{e.like}"
    how = _EXPLAIN.get(e.kind)
    if how is None:
        return one_line(e.msg), "See config.example.yaml for the shape"
    return how(e)


def validation_errors(
    path: Path, exc: ValidationError, lines: dict[KeyPath, int]
) -> list[ConfigError]:
    """Every error pydantic found, each on the line it is about, sorted by line."""
    found: list[tuple[float, int, ConfigError]] = []
    for order, err in enumerate(exc.errors(include_url=False)):
        loc: KeyPath = tuple(err["loc"])
        # A missing key is not in the file; its parent is, and that is where to look.
        where = loc[:-1] if err["type"] == "missing" else loc
        line = line_near(lines, where)
        problem, hint = explain(err)
        found.append(
            (
                line if line is not None else math.inf,
                order,
                ConfigError(path, line, format_key(loc), problem, hint),
            )
        )
    found.sort(key=lambda item: (item[0], item[1]))
    return [error for _, _, error in found]
