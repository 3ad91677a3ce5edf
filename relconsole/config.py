"""Typed configuration: read one YAML file, validate it, resolve its secrets.

Every problem with a file becomes exactly one `ConfigError` naming the file, the line,
the dotted key, what is wrong and what to do about it — never a traceback and never a
pydantic dump. Line numbers come from composing the YAML ourselves, so every key path
in the document has the line it was written on.

Secrets (`env:VAR`, `keyring:SERVICE/NAME`) may appear anywhere under `providers:`.
They are resolved into `Secret` objects whose str/repr/format is "***"; their value
never reaches a message, a repr or an exception (safety rule 6).

No I/O here beyond reading the file and resolving secrets.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from relconsole.model import FlagAuditPolicy, FlagKind, GateSpec, MetricSpec, ReleasePlan, Step

__all__ = [
    "ConfigError",
    "LoadedConfig",
    "Secret",
    "load_config",
    "parse_duration",
    "resolve_secret",
]

KeyPath = tuple[str | int, ...]

STRATEGIES = ("canary", "blue-green", "rolling", "ab", "shadow")
PROVIDER_KINDS = ("metrics", "traffic", "flags", "notify")
PRODUCTION_NAMES = frozenset({"production", "prod"})
THRESHOLDS = ("max", "min", "max_increase", "max_ratio")


# --------------------------------------------------------------------------- errors


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def format_key(path: Iterable[str | int]) -> str:
    """("release", "steps", 2, "weight") -> "release.steps[2].weight"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if not text or re.search(r"[\s.\[\]\"']", text) or not text.isprintable():
                out += f"[{json.dumps(text, ensure_ascii=False)}]"
            else:
                out += f".{text}" if out else text
    return out


class ConfigError(Exception):
    """One problem with a configuration file, ready to print on one line.

    str(err) looks like
    ``relconsole.yaml:14: release.steps[2].weight: weights must increase (50 after 50).
    Make each step's weight larger than the one before.``
    """

    def __init__(
        self,
        path: Path | str | None,
        line: int | None,
        key: str,
        problem: str,
        hint: str = "",
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.line = line
        # A key may hold anything YAML allows; the message must still be one line.
        self.key = "".join(c if c.isprintable() else repr(c)[1:-1] for c in key)
        self.problem = _one_line(problem).rstrip(".")
        hint = _one_line(hint)
        if hint and not hint.endswith((".", "?", "!")):
            hint += "."
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        key = f"{self.key}: " if self.key else ""
        text = f"{where}{key}{self.problem}."
        return f"{text} {self.hint}" if self.hint else text

    def __repr__(self) -> str:
        return f"ConfigError({str(self)!r})"

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working
        return (ConfigError, (self.path, self.line, self.key, self.problem, self.hint))


class _Problem(Exception):
    """Internal: a problem without a location yet (problem + hint)."""

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


# --------------------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_UNIT_ORDER = ("d", "h", "m", "s", "ms")
_DURATION_HINT = "Write a number with a unit: 500ms, 30s, 2m, 1h30m (a bare number means seconds)"


class DurationError(ValueError):
    """A duration could not be read; `problem` and `hint` are shown separately."""

    def __init__(self, problem: str, hint: str = _DURATION_HINT) -> None:
        super().__init__(f"{problem}. {hint}.")
        self.problem = problem
        self.hint = hint


def parse_duration(text: str | int | float) -> float:
    """Seconds in "30s", "2m", "1h30m", "500ms", "1h", "1d"; a bare number is seconds.

    Raises ValueError (a `DurationError`) with a message that says what to write.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise DurationError(f"expected a duration, got {_describe(text)}")
    if isinstance(text, (int, float)):
        value = float(text)
        if not math.isfinite(value):
            raise DurationError(f"{text!r} is not a finite duration")
        if value < 0:
            raise DurationError(f"duration {text:g} is negative", "Use 0 or more")
        return value
    raw = text.strip()
    if not raw:
        raise DurationError("the duration is empty")
    if raw.startswith("-"):
        raise DurationError(f"duration '{raw}' is negative", "Use 0 or more")
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise DurationError(f"'{raw}' is not a finite duration")
        return value
    compact = raw.replace(" ", "")
    total = 0.0
    pos = 0
    last_rank = -1
    for match in _DURATION_PART.finditer(compact):
        if match.start() != pos:
            break
        unit = match.group(2).lower()
        rank = _UNIT_ORDER.index(unit)
        if rank <= last_rank:
            raise DurationError(
                f"'{raw}' repeats or misorders its units",
                "Go from the largest unit to the smallest, each once, e.g. 1h30m",
            )
        last_rank = rank
        total += float(match.group(1)) * _UNIT_SECONDS[unit]
        pos = match.end()
    if pos != len(compact) or pos == 0:
        raise DurationError(f"'{raw}' is not a duration")
    return total


# --------------------------------------------------------------------------- secrets


class Secret:
    """A resolved secret. Shows as "***" everywhere; `.reveal()` gives the value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source  # "env:VAR" or "keyring:SERVICE/NAME" — never the value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value and self.source == other.source
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.source)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OTHER_SECRET_SCHEMES = frozenset(
    {"vault", "secret", "secrets", "op", "pass", "keychain", "sops", "awssm", "gcpsm"}
)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+._-]*):(?!//)(?!\d+\Z)")


def _is_secret_ref(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("env:", "keyring:"))


def _unknown_scheme(value: str) -> str | None:
    """The scheme of a string that looks like a secret reference but is not env:/keyring:."""
    match = _SCHEME.match(value)
    if not match:
        return None
    scheme = match.group(1)
    if scheme in ("env", "keyring"):
        return None
    low = scheme.lower()
    if low in ("env", "keyring") or low in _OTHER_SECRET_SCHEMES:
        return scheme
    if difflib.get_close_matches(low, ["env", "keyring"], n=1, cutoff=0.8):
        return scheme
    return None


def _env_suggestion(*parts: object) -> str:
    words = [re.sub(r"[^A-Za-z0-9]+", "_", str(p)).strip("_").upper() for p in parts]
    words = [w for w in words if w and w != "RELCONSOLE"]
    return "_".join(["RELCONSOLE", *words])


def _keyring_get(service: str, name: str, timeout: float) -> str | None:
    """keyring.get_password in a daemon thread: a locked Secret Service can hang forever."""
    import keyring
    import keyring.errors

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = keyring.get_password(service, name)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=run, name="relconsole-keyring", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _Problem(f"the keyring did not answer within {timeout:g}s (is it locked?)")
    error = box.get("error")
    if isinstance(error, keyring.errors.NoKeyringError):
        raise _Problem("no keyring backend is available on this machine")
    if isinstance(error, keyring.errors.KeyringError):
        raise _Problem(f"the keyring failed ({type(error).__name__}: {_clip(str(error))})")
    if error is not None:
        raise _Problem(f"reading the keyring failed ({type(error).__name__})")
    return box.get("value")


def _resolve(ref: str, timeout: float, suggest: str | None) -> Secret:
    scheme, _, rest = ref.partition(":")
    if scheme == "env":
        if not _ENV_NAME.match(rest):
            raise _Problem(
                f"'{_clip(rest)}' is not an environment variable name",
                "Write env:VAR with letters, digits and underscores, e.g. env:RELCONSOLE_TOKEN",
            )
        value = os.environ.get(rest)
        if value is None:
            raise _Problem(
                f"environment variable {rest} is not set",
                f"Export {rest} before starting relconsole (or write keyring:SERVICE/NAME)",
            )
        if value == "":
            raise _Problem(
                f"environment variable {rest} is set but empty",
                f"Put the secret in {rest}",
            )
        return Secret(value, ref)
    if scheme == "keyring":
        service, _, name = rest.rpartition("/")
        if not service or not name:
            raise _Problem(
                f"'{_clip(ref)}' does not name a keyring entry",
                "Write keyring:SERVICE/NAME, e.g. keyring:relconsole/prometheus",
            )
        env = suggest or _env_suggestion(service, name)
        fallback = f"Put the secret in an environment variable and write env:{env} instead"
        try:
            value = _keyring_get(service, name, timeout)
        except _Problem as problem:
            raise _Problem(problem.problem, fallback) from None
        if value is None:
            raise _Problem(
                f"the keyring has no password for service '{service}', name '{name}'",
                f"Store it with `keyring set {service} {name}`, or write env:{env} instead",
            )
        return Secret(value, ref)
    raise _Problem(
        f"unknown secret scheme '{_clip(scheme)}:'",
        "Secrets are written env:VAR or keyring:SERVICE/NAME",
    )


def resolve_secret(ref: str, *, timeout: float = 3.0) -> Secret:
    """Resolve "env:VAR" or "keyring:SERVICE/NAME"; raise ConfigError (no file) if it fails."""
    try:
        return _resolve(ref, timeout, None)
    except _Problem as problem:
        raise ConfigError(None, None, "", problem.problem, problem.hint) from None


# --------------------------------------------------------------------------- YAML with lines


_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Composer:
    """Builds plain Python data from a YAML node tree, recording the line of every key path.

    Also rejects duplicate keys, which plain PyYAML silently resolves to the last one.
    """

    def __init__(self, path: Path, loader: yaml.SafeLoader) -> None:
        self.path = path
        self.loader = loader
        self.lines: dict[KeyPath, int] = {}
        self.raw: dict[KeyPath, str] = {}  # plain scalars' source text, to keep "2.10" as typed
        self._stack: set[int] = set()

    def fail(self, node: yaml.Node, key: KeyPath, problem: str, hint: str = "") -> ConfigError:
        return ConfigError(self.path, node.start_mark.line + 1, format_key(key), problem, hint)

    def build(self, node: yaml.Node, key: KeyPath) -> Any:
        if id(node) in self._stack:
            raise self.fail(node, key, "an alias refers to itself", "Remove the recursive alias")
        self._stack.add(id(node))
        try:
            if isinstance(node, yaml.ScalarNode):
                return self._scalar(node, key)
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    raise self.fail(
                        node, key, f"unsupported YAML tag '{node.tag}'", "Remove the tag"
                    )
                items = []
                for index, child in enumerate(node.value):
                    self.lines.setdefault((*key, index), child.start_mark.line + 1)
                    items.append(self.build(child, (*key, index)))
                return items
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, key)
        finally:
            self._stack.discard(id(node))
        raise self.fail(node, key, "unsupported YAML node")  # pragma: no cover

    def _scalar(self, node: yaml.ScalarNode, key: KeyPath) -> Any:
        # Errors are raised outside the `except` so that no YAML error (whose snippet
        # quotes the file, secrets and all) rides along as __context__.
        problem = None
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            problem = exc.problem or "cannot read this value"
            if "constructor for the tag" in problem:
                problem = f"unsupported YAML tag '{node.tag}'"
        if problem is not None:
            raise self.fail(node, key, problem, "Remove the tag or quote the value")
        if node.style is None:
            self.raw[key] = node.value
        return value

    def _pairs(self, node: yaml.MappingNode, key: KeyPath) -> list[tuple[yaml.Node, yaml.Node]]:
        """Explicit pairs (duplicates rejected), then pairs merged in with `<<:`."""
        explicit: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        seen: dict[str, int] = {}
        for knode, vnode in node.value:
            if knode.tag == _MERGE_TAG:
                sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise self.fail(
                            vnode,
                            key,
                            "'<<' must merge a mapping",
                            "Point '<<:' at an anchored mapping, e.g. <<: *defaults",
                        )
                    merged.extend(self._pairs(source, key))
                continue
            if not isinstance(knode, yaml.ScalarNode):
                raise self.fail(
                    knode,
                    key,
                    "a key must be a plain name, not a list or mapping",
                    "Write keys as plain names, e.g. service:",
                )
            name = knode.value
            line = knode.start_mark.line + 1
            if name in seen:
                raise self.fail(
                    knode,
                    (*key, name),
                    f"duplicate key '{name}' (first at line {seen[name]})",
                    "Keep only one; YAML would silently use the last one",
                )
            seen[name] = line
            explicit.append((knode, vnode))
        names = set(seen)
        for knode, vnode in merged:
            if knode.value not in names:
                names.add(knode.value)
                explicit.append((knode, vnode))
        return explicit

    def _mapping(self, node: yaml.MappingNode, key: KeyPath) -> dict[str, Any]:
        if node.tag != _MAP_TAG:
            raise self.fail(node, key, f"unsupported YAML tag '{node.tag}'", "Remove the tag")
        out: dict[str, Any] = {}
        for knode, vnode in self._pairs(node, key):
            child = (*key, knode.value)
            self.lines.setdefault(child, knode.start_mark.line + 1)
            out[knode.value] = self.build(vnode, child)
        return out


def _yaml_error(path: Path, text: str, exc: yaml.YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    if isinstance(exc, yaml.reader.ReaderError):
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        return ConfigError(
            path,
            line,
            "",
            "the file contains a character YAML does not allow",
            "Remove control characters from the file",
        )
    problem = getattr(exc, "problem", None) or "cannot be parsed"
    context = getattr(exc, "context", None)
    hint = "Check the indentation and quoting on this line and the one before it"
    if "'\\t'" in problem:
        problem, hint = "a tab character is used for indentation", "Indent with spaces, not tabs"
    elif "mapping values are not allowed" in problem:
        hint = "Check the indentation, and quote values that contain ': '"
    elif "expected a single document" in (context or "") or "single document" in problem:
        problem, hint = "the file holds more than one YAML document", "Remove the '---' separator"
    elif "found undefined alias" in (context or ""):
        hint = "Define the anchor (&name) before using it (*name)"
    if context and "single document" not in context:
        problem = f"{context}, {problem}"
    return ConfigError(path, line, "", f"invalid YAML: {problem}", hint)


def _compose(path: Path, text: str) -> tuple[Any, _Composer]:
    error = None
    loader: yaml.SafeLoader | None = None
    try:
        # The reader checks for forbidden characters while it is being constructed.
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is not None:
            composer = _Composer(path, loader)
            data = composer.build(node, ())
    except yaml.YAMLError as exc:
        error = _yaml_error(path, text, exc)
    finally:
        if loader is not None:
            loader.dispose()
    if error is not None:  # raised here so the YAML error (which quotes the file) is not kept
        raise error
    if node is None:
        raise ConfigError(path, None, "", "the file is empty", "Start from config.example.yaml")
    if not isinstance(data, dict):
        raise ConfigError(
            path,
            node.start_mark.line + 1,
            "",
            f"the top level must be a mapping of sections (release:, providers:, ...), "
            f"not {_describe(data)}",
            "Start from config.example.yaml",
        )
    return data, composer


# --------------------------------------------------------------------------- schema


def _duration(value: Any) -> Any:
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise PydanticCustomError(
            "duration", "{problem}", {"problem": exc.problem, "hint": exc.hint}
        ) from None


def _not_bool(value: Any) -> Any:
    # pydantic would read `weight: true` as 1; a boolean where a number belongs is a mistake.
    if isinstance(value, bool):
        raise PydanticCustomError(
            "bool_not_number", "{problem}", {"problem": "must be a number, not true/false"}
        )
    return value


Text = Annotated[str, StringConstraints(min_length=1)]
Duration = Annotated[float, BeforeValidator(_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_duration), Field(gt=0)]
Int = Annotated[int, BeforeValidator(_not_bool)]
Finite = Annotated[float, BeforeValidator(_not_bool), Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepModel(_Strict):
    weight: Int = Field(ge=0, le=100)
    bake: Duration = 0.0


class RollbackModel(_Strict):
    retry_max: PositiveDuration = 30.0
    give_up: Duration = 600.0
    kill_flags: bool = False  # kill the release's flags first, then revert traffic


class ReleaseModel(_Strict):
    service: Text
    version: Text
    environment: Text
    strategy: Literal["canary", "blue-green", "rolling", "ab", "shadow"] = "canary"
    steps: list[StepModel]
    auto_advance: bool = False
    auto_rollback: bool = True
    poll_interval: PositiveDuration = 5.0
    stale_after: PositiveDuration | None = None
    call_timeout: PositiveDuration = 5.0
    production: bool | None = None
    flags: list[Text] = Field(default_factory=list)
    rollback: RollbackModel = Field(default_factory=RollbackModel)


class ProviderModel(BaseModel):
    """One providers.<kind> block: `type` plus whatever the adapter reads (checked later)."""

    model_config = ConfigDict(extra="allow")
    type: Text


class ProvidersModel(_Strict):
    traffic: ProviderModel
    metrics: ProviderModel | None = None
    flags: ProviderModel | None = None
    notify: ProviderModel | None = None


class VersionsModel(_Strict):
    canary: Text | None = None
    baseline: str = ""


class MetricModel(_Strict):
    query: str = ""
    unit: str = ""


class GateModel(_Strict):
    metric: Text
    max: Finite | None = None
    min: Finite | None = None
    max_increase: Finite | None = None
    max_ratio: Annotated[Finite, Field(gt=0)] | None = None
    failure_limit: Int = Field(default=1, ge=1)
    inconclusive_limit: Int = Field(default=6, ge=1)


class UIModel(_Strict):
    theme: Text | None = None


class StateModel(_Strict):
    dir: Text | None = None


def _never(value: Any) -> Any:
    # `release: never` reads better than a null for "this kind of flag does not expire".
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    return value


Days = Annotated[Finite, Field(ge=0)]


class FlagsAuditModel(_Strict):
    lifetime_days: dict[str, Annotated[Days | None, BeforeValidator(_never)]] = Field(
        default_factory=dict
    )
    stale_full_on_days: Days = 14.0
    naming: str | None = None


class RootModel(_Strict):
    release: ReleaseModel
    providers: ProvidersModel
    versions: VersionsModel = Field(default_factory=VersionsModel)
    metrics: dict[str, MetricModel] = Field(default_factory=dict)
    gates: list[GateModel] = Field(default_factory=list)
    ui: UIModel = Field(default_factory=UIModel)
    state: StateModel = Field(default_factory=StateModel)
    flags_audit: FlagsAuditModel = Field(default_factory=FlagsAuditModel)


# Which model a mapping at a key path is validated by ("*" = any key or index).
_MODELS: dict[tuple[str, ...], type[BaseModel]] = {
    (): RootModel,
    ("release",): ReleaseModel,
    ("release", "steps", "*"): StepModel,
    ("release", "rollback"): RollbackModel,
    ("providers",): ProvidersModel,
    ("versions",): VersionsModel,
    ("metrics", "*"): MetricModel,
    ("gates", "*"): GateModel,
    ("ui",): UIModel,
    ("state",): StateModel,
    ("flags_audit",): FlagsAuditModel,
}

# Text values that YAML may have read as a number, date or boolean ("2.10", 2024-05-01).
_TEXT_PATHS: tuple[tuple[str, ...], ...] = (
    ("release", "service"),
    ("release", "version"),
    ("release", "environment"),
    ("release", "flags", "*"),
    ("providers", "*", "type"),
    ("versions", "canary"),
    ("versions", "baseline"),
    ("metrics", "*", "query"),
    ("metrics", "*", "unit"),
    ("gates", "*", "metric"),
    ("ui", "theme"),
    ("state", "dir"),
    ("flags_audit", "naming"),
)

# Sections and lists that may be written empty (`gates:` with every entry commented out).
_MAY_BE_EMPTY: tuple[tuple[str, ...], ...] = (
    ("versions",),
    ("metrics",),
    ("gates",),
    ("ui",),
    ("state",),
    ("release", "flags"),
    ("release", "rollback"),
    ("flags_audit",),
    ("flags_audit", "lifetime_days"),
)

# One-line examples used in hints.
_EXAMPLES: dict[tuple[str, ...], str] = {
    ("release",): "release: {service: checkout-api, version: 2.3.0, environment: production, "
    "steps: [...]}",
    ("release", "service"): "service: checkout-api",
    ("release", "version"): "version: 2.3.0",
    ("release", "environment"): "environment: production",
    ("release", "steps"): "steps: [{weight: 10, bake: 2m}, {weight: 100}]",
    ("release", "steps", "*"): "- {weight: 10, bake: 2m}",
    ("release", "steps", "*", "weight"): "weight: 10",
    ("release", "flags"): "flags: [checkout-new-pricing-release]",
    ("release", "rollback"): "rollback: {retry_max: 30s, give_up: 10m, kill_flags: true}",
    ("providers",): "providers: {traffic: {type: sim}}",
    ("providers", "*"): "{type: sim}",
    ("providers", "traffic"): "traffic: {type: sim}",
    ("providers", "*", "type"): "type: sim",
    ("versions",): "versions: {canary: 2.3.0, baseline: 2.2.1}",
    ("metrics",): "metrics: {error_rate: {query: '...', unit: ratio}}",
    ("metrics", "*"): "error_rate: {query: '...', unit: ratio}",
    ("gates",): "gates: [{metric: error_rate, max: 0.01}]",
    ("gates", "*"): "- {metric: error_rate, max: 0.01}",
    ("gates", "*", "metric"): "metric: error_rate",
    ("ui",): "ui: {theme: dark}",
    ("state",): "state: {dir: ./state}",
    ("flags_audit",): "flags_audit: {lifetime_days: {release: 40}, stale_full_on_days: 14}",
    ("flags_audit", "lifetime_days"): "lifetime_days: {release: 40, operational: 7}",
    ("flags_audit", "lifetime_days", "*"): "release: 40",
    ("flags_audit", "stale_full_on_days"): "stale_full_on_days: 14",
}


def _match(pattern: tuple[str, ...], path: KeyPath) -> bool:
    return len(pattern) == len(path) and all(
        p == "*" or p == k for p, k in zip(pattern, path, strict=True)
    )


def _lookup(table: dict[tuple[str, ...], Any], path: KeyPath) -> Any:
    for pattern, value in table.items():
        if _match(pattern, path):
            return value
    return None


def _clip(text: str, limit: int = 60) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"'{_clip(value)}'"
    if isinstance(value, (int, float)):
        return f"{value!r}"
    return f"a {type(value).__name__}"


def _shape(value: Any) -> str:
    """Like _describe, without echoing text (for places that may hold secrets)."""
    if isinstance(value, str):
        return "text"
    return _describe(value)


def _get(data: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _normalise(data: dict[str, Any], composer: _Composer) -> dict[str, Any]:
    """Drop empty optional sections and give back the source text of numbers in text fields."""
    for path in _MAY_BE_EMPTY:
        parent = _get(data, path[:-1])
        if isinstance(parent, dict) and path[-1] in parent and parent[path[-1]] is None:
            del parent[path[-1]]
    metrics = data.get("metrics")
    if isinstance(metrics, dict):
        for name, spec in metrics.items():
            if spec is None:
                metrics[name] = {}

    def walk(node: Any, path: KeyPath) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                visit(node, k, v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                visit(node, i, v, (*path, i))

    def visit(container: Any, k: Any, v: Any, path: KeyPath) -> None:
        if isinstance(v, (dict, list)):
            walk(v, path)
        elif (
            isinstance(v, (int, float, date, bool))
            and any(_match(p, path) for p in _TEXT_PATHS)
            and path in composer.raw
        ):
            container[k] = composer.raw[path]

    walk(data, ())
    return data


# --------------------------------------------------------------------------- the result


@dataclass
class LoadedConfig:
    path: Path
    plan: ReleasePlan
    providers: dict[str, dict[str, Any]]
    versions: dict[str, str]
    theme: str | None
    state_dir: Path | None
    lines: dict[KeyPath, int] = field(default_factory=dict, repr=False, compare=False)

    def line_of(self, *path: str | int) -> int | None:
        """The 1-based line a key path was written on, or None when it is not in the file."""
        return self.lines.get(tuple(path))

    def error(self, key_path: tuple[str | int, ...], problem: str, hint: str) -> ConfigError:
        """A ConfigError for a key path; a key that is not in the file gets its parent's line."""
        return ConfigError(
            self.path, _line_near(self.lines, key_path), format_key(key_path), problem, hint
        )


def _line_near(lines: dict[KeyPath, int], path: KeyPath) -> int | None:
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


# --------------------------------------------------------------------------- pydantic errors


def _explain(err: dict[str, Any]) -> tuple[str, str]:
    """(problem, hint) in words, for one pydantic error."""
    kind = err["type"]
    loc: KeyPath = tuple(err["loc"])
    ctx = err.get("ctx") or {}
    value = err.get("input")
    name = str(loc[-1]) if loc else ""
    in_providers = bool(loc) and loc[0] == "providers"
    got = _shape(value) if in_providers else _describe(value)
    example = _lookup(_EXAMPLES, loc)
    like = f" like `{example}`" if example else ""

    if kind == "missing":
        parent = format_key(loc[:-1]) or "the top level"
        hint = f"Add `{example}` under {parent}" if example else f"Add {name}: under {parent}"
        if loc == ("providers", "traffic"):
            hint = (
                "Add a traffic provider, e.g. traffic: {type: sim} "
                "(or haproxy, argo-rollouts, command)"
            )
        if loc == ("release", "steps"):
            hint = f"Add {example}; the last step's weight must be 100"
        if len(loc) == 1:
            return f"required section '{name}' is missing", f"Add a top-level `{example}` section"
        return f"required key '{name}' is missing", hint
    if kind == "extra_forbidden":
        model = _lookup(_MODELS, loc[:-1])
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"Did you mean '{close[0]}'?" if close else ""
        if known:
            hint = f"{hint} Known keys here: {', '.join(known)}".strip()
        return f"unknown key '{_clip(name)}'", hint
    if kind == "duration":
        return str(ctx.get("problem", err["msg"])), str(ctx.get("hint", _DURATION_HINT))
    if kind == "bool_not_number":
        return str(ctx["problem"]), "Write a number" + (f", e.g. `{example}`" if example else "")
    if value is None and kind in {
        "string_type",
        "int_type",
        "float_type",
        "bool_type",
        "model_type",
        "dict_type",
        "list_type",
        "model_attributes_type",
    }:
        return "has no value", f"Give it a value{like}"
    if kind in ("string_type",):
        return f"must be text, not {got}", "Quote the value"
    if kind in ("string_too_short",):
        return "must not be empty", f"Give it a value{like}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        hint = "Write a whole number"
        if name == "weight":
            hint = "Write the canary's percentage of traffic as a whole number, e.g. weight: 10"
        return f"must be a whole number, not {got}", hint
    if kind in ("float_type", "float_parsing"):
        return f"must be a number, not {got}", "Write a plain number such as 0.01"
    if kind == "finite_number":
        return "must be a finite number", "Write a plain number such as 0.01"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false, not {got}", "Write true or false"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping (key: value), not {got}", f"Write it{like}"
    if kind == "list_type":
        return f"must be a list, not {got}", f"Write it{like}"
    if kind == "literal_error":
        allowed = STRATEGIES if name == "strategy" else ()
        close = difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.6)
        hint = f"Did you mean '{close[0]}'? " if close else ""
        return f"{got} is not allowed", f"{hint}Use one of: {', '.join(allowed)}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        if name == "weight":
            return (
                f"weight must be between 0 and 100, not {got}",
                "A weight is the canary's percentage of traffic",
            )
        bound = {
            "greater_than_equal": "at least {ge}",
            "less_than_equal": "at most {le}",
            "greater_than": "greater than {gt}",
            "less_than": "less than {lt}",
        }[kind]
        what = bound.format(**{k: f"{v:g}" if isinstance(v, float) else v for k, v in ctx.items()})
        if name in ("poll_interval", "call_timeout", "stale_after", "retry_max"):
            return f"must be {what}, not {got}", "Use a positive duration such as 5s"
        return f"must be {what}, not {got}", f"Use a value {what}"
    return _one_line(err.get("msg", "is not valid")), "See config.example.yaml for the shape"


def _validation_error(path: Path, exc: ValidationError, lines: dict[KeyPath, int]) -> ConfigError:
    found: list[tuple[float, int, ConfigError]] = []
    for order, err in enumerate(exc.errors(include_url=False)):
        loc: KeyPath = tuple(err["loc"])
        where = loc[:-1] if err["type"] == "missing" else loc
        line = _line_near(lines, where)
        problem, hint = _explain(err)
        found.append(
            (
                line if line is not None else math.inf,
                order,
                ConfigError(path, line, format_key(loc), problem, hint),
            )
        )
    found.sort(key=lambda item: (item[0], item[1]))
    return found[0][2]


# --------------------------------------------------------------------------- cross-field checks


def _check(model: RootModel, fail: Callable[[KeyPath, str, str], ConfigError]) -> None:
    """Rules pydantic cannot express per field. Collects them all and raises the first by line."""
    problems: list[ConfigError] = []
    release = model.release
    steps = release.steps
    if not steps:
        problems.append(
            fail(
                ("release", "steps"),
                "no steps",
                "Add at least one step, e.g. steps: [{weight: 10, bake: 2m}, {weight: 100}]",
            )
        )
    for i in range(1, len(steps)):
        if steps[i].weight <= steps[i - 1].weight:
            problems.append(
                fail(
                    ("release", "steps", i, "weight"),
                    f"weights must increase ({steps[i].weight} after {steps[i - 1].weight})",
                    "Make each step's weight larger than the one before",
                )
            )
            break
    if steps and steps[-1].weight != 100:
        problems.append(
            fail(
                ("release", "steps", len(steps) - 1, "weight"),
                f"the last step must send 100% of traffic to the canary (it is {steps[-1].weight})",
                "End the steps with - {weight: 100}",
            )
        )
    if release.stale_after is not None and release.stale_after < release.poll_interval:
        problems.append(
            fail(
                ("release", "stale_after"),
                f"stale_after ({release.stale_after:g}s) is shorter than poll_interval "
                f"({release.poll_interval:g}s), so every reading would be stale",
                "Make stale_after at least poll_interval, or leave it out (3x poll_interval)",
            )
        )

    known = list(model.metrics)
    if model.gates and model.providers.metrics is None:
        problems.append(
            fail(
                ("gates",),
                "gates are defined but there is no metrics provider, so no gate could ever pass",
                "Add providers.metrics (e.g. {type: sim} or {type: prometheus, url: ...}), "
                "or remove the gates",
            )
        )
    for i, gate in enumerate(model.gates):
        if gate.metric not in model.metrics:
            close = difflib.get_close_matches(gate.metric, known, n=1, cutoff=0.6)
            if known:
                hint = (f"Did you mean '{close[0]}'? " if close else "") + (
                    f"Known metrics: {', '.join(known)}"
                )
            else:
                hint = "No metrics are defined; add a metrics: section that defines it"
            problems.append(
                fail(
                    ("gates", i, "metric"),
                    f"gate names unknown metric '{_clip(gate.metric)}'",
                    hint,
                )
            )
        if all(getattr(gate, t) is None for t in THRESHOLDS):
            problems.append(
                fail(
                    ("gates", i),
                    f"gate on '{_clip(gate.metric)}' has no threshold",
                    f"Give it at least one of {', '.join(THRESHOLDS)}",
                )
            )
        if gate.min is not None and gate.max is not None and gate.min > gate.max:
            problems.append(
                fail(
                    ("gates", i, "min"),
                    f"min ({gate.min:g}) is above max ({gate.max:g}), so no value could pass",
                    "Make min smaller than max",
                )
            )
    kinds = [k.value for k in FlagKind]
    for name in model.flags_audit.lifetime_days:
        if name not in kinds:
            close = difflib.get_close_matches(name, kinds, n=1, cutoff=0.6)
            problems.append(
                fail(
                    ("flags_audit", "lifetime_days", name),
                    f"unknown flag type '{_clip(name)}'",
                    (f"Did you mean '{close[0]}'? " if close else "")
                    + f"Flag types: {', '.join(kinds)}",
                )
            )
    if model.flags_audit.naming is not None:
        try:
            re.compile(model.flags_audit.naming)
        except re.error as exc:
            problems.append(
                fail(
                    ("flags_audit", "naming"),
                    f"is not a regular expression ({exc})",
                    "Write a Python regular expression, quoted in single quotes, "
                    "e.g. '^[a-z0-9]+-[a-z0-9-]+-(release|ops)$'",
                )
            )
    if problems:
        problems.sort(key=lambda e: e.line if e.line is not None else math.inf)
        raise problems[0]


# --------------------------------------------------------------------------- secrets in providers


def _resolve_providers(
    providers: dict[str, dict[str, Any]],
    resolve: bool,
    timeout: float,
    fail: Callable[[KeyPath, str, str], ConfigError],
) -> None:
    """Check every secret reference under providers:, and resolve them in place if asked."""

    def visit(value: Any, path: KeyPath, kind: str, ptype: str) -> Any:
        if isinstance(value, dict):
            return {k: visit(v, (*path, k), kind, ptype) for k, v in value.items()}
        if isinstance(value, list):
            return [visit(v, (*path, i), kind, ptype) for i, v in enumerate(value)]
        if not isinstance(value, str):
            return value
        if _is_secret_ref(value):
            suggest = _env_suggestion(ptype or kind, *path[2:])
            try:
                if not resolve:
                    _check_ref_syntax(value)
                    return value
                return _resolve(value, timeout, suggest)
            except _Problem as problem:
                raise fail(path, problem.problem, problem.hint) from None
        scheme = _unknown_scheme(value)
        if scheme is not None:
            raise fail(
                path,
                f"unknown secret scheme '{_clip(scheme)}:'",
                "Secrets are written env:VAR or keyring:SERVICE/NAME (lower case)",
            )
        return value

    for kind, settings in providers.items():
        ptype = str(settings.get("type", ""))
        providers[kind] = visit(settings, ("providers", kind), kind, ptype)


def _check_ref_syntax(ref: str) -> None:
    scheme, _, rest = ref.partition(":")
    if scheme == "env" and not _ENV_NAME.match(rest):
        raise _Problem(
            f"'{_clip(rest)}' is not an environment variable name",
            "Write env:VAR with letters, digits and underscores",
        )
    if scheme == "keyring":
        service, _, name = rest.rpartition("/")
        if not service or not name:
            raise _Problem(
                f"'{_clip(ref)}' does not name a keyring entry",
                "Write keyring:SERVICE/NAME, e.g. keyring:relconsole/prometheus",
            )


# --------------------------------------------------------------------------- load


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path,
            None,
            "",
            "file not found",
            "Pass -c PATH, or copy config.example.yaml to relconsole.yaml",
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            path, None, "", "is a directory, not a file", "Pass the path of the YAML file with -c"
        ) from None
    except PermissionError:
        raise ConfigError(
            path, None, "", "permission denied", "Make the file readable by this user"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            path, None, "", f"is not UTF-8 text (byte {exc.start})", "Save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            path, None, "", f"cannot be read ({exc.strerror or exc})", "Check the path"
        ) from None


def _audit_policy(section: FlagsAuditModel) -> FlagAuditPolicy:
    """The audit policy: the defaults, with whatever the file overrides."""
    default = FlagAuditPolicy()
    lifetimes = dict(default.lifetime_days)
    for name, days in section.lifetime_days.items():
        lifetimes[FlagKind(name)] = days
    return FlagAuditPolicy(
        lifetime_days=tuple(lifetimes.items()),
        stale_full_on_days=section.stale_full_on_days,
        naming=default.naming if section.naming is None else section.naming,
    )


def load_config(
    path: str | Path, *, resolve_secrets: bool = True, secret_timeout: float = 3.0
) -> LoadedConfig:
    """Read, validate and (by default) resolve the secrets of one configuration file.

    Raises ConfigError — exactly one, the first problem by line — for anything wrong.
    With resolve_secrets=False, secret references stay as their "env:…"/"keyring:…" text.
    """
    path = Path(path)
    text = _read(path)
    data, composer = _compose(path, text)
    lines = composer.lines

    def fail(key: KeyPath, problem: str, hint: str) -> ConfigError:
        return ConfigError(path, _line_near(lines, key), format_key(key), problem, hint)

    data = _normalise(data, composer)
    error = None
    try:
        model = RootModel.model_validate(data)
    except ValidationError as exc:
        error = _validation_error(path, exc, lines)
    if error is not None:  # raised here: pydantic's error quotes input values
        raise error
    _check(model, fail)

    release = model.release
    providers: dict[str, dict[str, Any]] = {}
    for kind in PROVIDER_KINDS:
        block = getattr(model.providers, kind)
        if block is not None:
            settings = dict(data["providers"][kind])
            settings["type"] = block.type
            providers[kind] = settings
    _resolve_providers(providers, resolve_secrets, secret_timeout, fail)

    versions = {
        "canary": model.versions.canary or release.version,
        "baseline": model.versions.baseline,
    }
    production = release.production
    if production is None:
        production = release.environment.strip().lower() in PRODUCTION_NAMES
    plan = ReleasePlan(
        service=release.service,
        version=release.version,
        environment=release.environment,
        strategy=release.strategy,
        steps=tuple(Step(weight=s.weight, bake=s.bake) for s in release.steps),
        auto_advance=release.auto_advance,
        auto_rollback=release.auto_rollback,
        poll_interval=release.poll_interval,
        stale_after=release.stale_after,
        call_timeout=release.call_timeout,
        metrics=tuple(
            MetricSpec(name=n, query=m.query, unit=m.unit) for n, m in model.metrics.items()
        ),
        gates=tuple(
            GateSpec(
                metric=g.metric,
                max=g.max,
                min=g.min,
                max_increase=g.max_increase,
                max_ratio=g.max_ratio,
                failure_limit=g.failure_limit,
                inconclusive_limit=g.inconclusive_limit,
            )
            for g in model.gates
        ),
        release_flags=tuple(release.flags),
        baseline_version=model.versions.baseline,
        rollback_retry_max=release.rollback.retry_max,
        rollback_give_up=release.rollback.give_up,
        production=production,
        kill_flags_on_rollback=release.rollback.kill_flags,
        flags_audit=_audit_policy(model.flags_audit),
    )
    state_dir = None
    if model.state.dir is not None:
        state_dir = Path(model.state.dir).expanduser()
        if not state_dir.is_absolute():
            state_dir = path.absolute().parent / state_dir
    return LoadedConfig(
        path=path,
        plan=plan,
        providers=providers,
        versions=versions,
        theme=model.ui.theme,
        state_dir=state_dir,
        lines=dict(lines),
    )
