"""Read an Argo Rollout (the JSON the API server returns) the way `kubectl argo rollouts` does.

Pure functions over plain dicts: no Kubernetes client, no I/O, nothing from the engine or
the TUI. `view(rollout, replica_sets)` returns one frozen `RolloutView`; its
`controller_dict()` is what `relconsole status --json` reports as "controller".

Every rule is a re-statement (not a copy) of argoproj/argo-rollouts at commit
9f8d111d8f8e3e88b6d7f8bbdf62fd3cd863ef9d:

* phase and message: `utils/rollout/rolloututil.go` `GetRolloutPhase`,
  `isGenerationObserved`, `IsUnpausing`, `CalculateRolloutPhase`,
  `waitingForBlueGreenPostPromotionAnalysis`, `IsFullyPromoted`; the condition reasons
  from `utils/conditions/conditions.go` (`RolloutAbortedReason`, `TimedOutReason`); the
  analysis phases that count as completed from `pkg/apis/rollouts/v1alpha1/analysis_types.go`
  `AnalysisPhase.Completed`.
* step, set weight, actual weight, replica counters:
  `pkg/kubectl-argo-rollouts/info/rollout_info.go` `NewRolloutInfo`;
  `utils/replicaset/canary.go` `GetCurrentCanaryStep`, `GetCurrentSetWeight`;
  `utils/weightutil/weight.go` `MaxTrafficWeight`; `utils/defaults/defaults.go`
  (`DefaultReplicas = 1`, `DefaultAutoPromotionEnabled = true`).
* which ReplicaSet is stable / canary: `pkg/kubectl-argo-rollouts/info/replicaset_info.go`
  `GetReplicaSetInfo` (owner UID, label `rollouts-pod-template-hash`, sort by revision).
* the step kinds and their fields: `pkg/apis/rollouts/v1alpha1/types.go` (`CanaryStep`,
  `RolloutPause.DurationSeconds`, `SetCanaryScale`, `SetHeaderRoute`, `SetMirrorRoute`,
  `PluginStep`, `RolloutExperimentStep`, `RolloutAnalysis`, `BlueGreenStrategy`); the
  order in which a step's kind is decided from `rolloututil.go` `CanaryStepString`; the
  default mirror percentage (100) from `rollout/trafficrouting/istio/istio.go`
  `createMirrorRoute`; a setMirrorRoute without `match` removes its route
  (`reconcileVirtualServiceMirrorRoutes`, and docs/features/traffic-management/index.md
  "Traffic Mirroring to Canary"); a mirror step completes at once (`rollout/canary.go`
  `completedCurrentCanaryStep`); the managed routes are removed on abort and once fully
  promoted (`rollout/trafficrouting.go` `reconcileTrafficRouting`, `RemoveManagedRoutes`).

Input handling follows Go's decoding of the same JSON: a missing or null field takes the
zero value (or the documented default) the plugin would see; a field of the wrong type,
which would make the plugin's decoder fail, raises `RolloutFormatError` (a `ValueError`)
naming the field. Unknown fields are ignored, as the plugin's dynamic client keeps them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from typing import Any, ClassVar, Final, Literal, TypeAlias

__all__ = [
    "AnalysisArg",
    "AnalysisStep",
    "AnalysisTemplateRef",
    "ArgoPhase",
    "BlueGreenStage",
    "BlueGreenView",
    "CanaryStep",
    "ExperimentStep",
    "ExperimentTemplate",
    "HeaderMatch",
    "MirrorMatch",
    "PauseStep",
    "PluginStep",
    "ReplicaCounts",
    "RolloutFormatError",
    "RolloutView",
    "SetCanaryScaleStep",
    "SetHeaderRouteStep",
    "SetMirrorRouteStep",
    "SetWeightStep",
    "SideCounts",
    "StepKind",
    "StringMatch",
    "UnknownStep",
    "canary_steps",
    "mirror_steps",
    "pause_duration_seconds",
    "rollout_phase",
    "view",
]


class RolloutFormatError(ValueError):
    """A Rollout (or ReplicaSet) field has a shape the plugin's decoder would reject."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class ArgoPhase(StrEnum):
    """The phases `GetRolloutPhase` can compute. There is no "Aborted": see `Degraded`."""

    HEALTHY = "Healthy"
    DEGRADED = "Degraded"  # an aborted rollout is Degraded, message "RolloutAborted: …"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"


# The exact strings of rolloututil.go; operators paste them into searches, so no rewording.
MSG_SPEC_NOT_OBSERVED: Final = "waiting for rollout spec update to be observed"
MSG_UNPAUSING: Final = "waiting for rollout to unpause"
MSG_MANUALLY_PAUSED: Final = "manually paused"
MSG_RESTARTING: Final = "rollout is restarting"
MSG_MORE_REPLICAS: Final = "more replicas need to be updated"
MSG_BECOMING_AVAILABLE: Final = "updated replicas are still becoming available"
MSG_CUTOVER_PENDING: Final = "active service cutover pending"
MSG_WAITING_ANALYSIS: Final = "waiting for analysis to complete"
MSG_WAITING_VERIFICATION: Final = "waiting for post-promotion verification to complete"
MSG_OLD_REPLICAS: Final = "old replicas are pending termination"
MSG_WAITING_STEPS: Final = "waiting for all steps to complete"

REASON_ABORTED: Final = "RolloutAborted"
REASON_TIMED_OUT: Final = "ProgressDeadlineExceeded"
CONDITION_INVALID_SPEC: Final = "InvalidSpec"
POD_TEMPLATE_HASH_LABEL: Final = "rollouts-pod-template-hash"
REVISION_ANNOTATION: Final = "rollout.argoproj.io/revision"

_DEFAULT_REPLICAS: Final = 1
_DEFAULT_MAX_WEIGHT: Final = 100
_DEFAULT_MIRROR_PERCENTAGE: Final = 100
_ANALYSIS_COMPLETED: Final = frozenset({"Successful", "Failed", "Error", "Inconclusive"})

_INT32: Final = (-(2**31), 2**31 - 1)
_INT64: Final = (-(2**63), 2**63 - 1)


# --------------------------------------------------------------------------------------
# Field readers. Each takes the parent object and a dotted path for the error message.


def _json_type(value: object) -> str:
    # Name JSON types, not Python ones: the reader of the message wrote YAML/JSON.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _as_obj(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RolloutFormatError(path, f"expected an object, got {_json_type(value)}")
    return value


def _obj(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    value = parent.get(key)
    # A Go pointer to a struct is nil for both a missing key and an explicit null.
    return None if value is None else _as_obj(value, _join(path, key))


def _obj_or_empty(parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    found = _obj(parent, key, path)
    return {} if found is None else found


def _list(parent: Mapping[str, Any], key: str, path: str) -> Sequence[Any]:
    value = parent.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise RolloutFormatError(_join(path, key), f"expected an array, got {_json_type(value)}")
    return value


def _str(parent: Mapping[str, Any], key: str, path: str) -> str:
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RolloutFormatError(_join(path, key), f"expected a string, got {_json_type(value)}")
    return value


def _check_int(value: object, path: str, bounds: tuple[int, int]) -> int:
    # bool is an int in Python but not in JSON; a float (even 5.0) fails Go's int decoding.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RolloutFormatError(path, f"expected an integer, got {_json_type(value)}")
    low, high = bounds
    if not low <= value <= high:
        raise RolloutFormatError(path, f"integer {value} is out of range")
    return value


def _int(
    parent: Mapping[str, Any], key: str, path: str, bounds: tuple[int, int] = _INT32
) -> int | None:
    value = parent.get(key)
    return None if value is None else _check_int(value, _join(path, key), bounds)


def _int0(parent: Mapping[str, Any], key: str, path: str) -> int:
    found = _int(parent, key, path)
    return 0 if found is None else found


def _opt_bool(parent: Mapping[str, Any], key: str, path: str) -> bool | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise RolloutFormatError(_join(path, key), f"expected a boolean, got {_json_type(value)}")
    return value


def _bool(parent: Mapping[str, Any], key: str, path: str) -> bool:
    return _opt_bool(parent, key, path) is True


# RFC 3339 as Go's time.Parse(time.RFC3339, …) accepts it (metav1.Time): a full date, a
# time with optional fraction, and a zone. fromisoformat alone would also take a bare date.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _time(parent: Mapping[str, Any], key: str, path: str) -> datetime | None:
    value = parent.get(key)
    if value is None:
        return None
    where = _join(path, key)
    if not isinstance(value, str):
        raise RolloutFormatError(where, f"expected an RFC 3339 time, got {_json_type(value)}")
    if _RFC3339.fullmatch(value) is None:
        raise RolloutFormatError(where, f"expected an RFC 3339 time, got {value!r}")
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    head, dot, rest = text.partition(".")
    if dot:
        # Go keeps nanoseconds; Python has microseconds. Truncating only matters for two
        # times that differ below a microsecond, which metav1.Time never writes.
        digits = re.match(r"[0-9]+", rest)
        assert digits is not None  # guaranteed by _RFC3339
        frac = digits.group(0)
        text = f"{head}.{frac[:6].ljust(6, '0')}{rest[len(frac) :]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise RolloutFormatError(where, f"not a valid time: {value!r}") from None


# --------------------------------------------------------------------------------------
# Canary steps


class StepKind(StrEnum):
    """A canary step's kind, named as the CRD field that selects it."""

    SET_WEIGHT = "setWeight"
    PAUSE = "pause"
    EXPERIMENT = "experiment"
    ANALYSIS = "analysis"
    SET_CANARY_SCALE = "setCanaryScale"
    PLUGIN = "plugin"
    SET_HEADER_ROUTE = "setHeaderRoute"
    SET_MIRROR_ROUTE = "setMirrorRoute"
    UNKNOWN = "unknown"


# CanaryStepString decides a step's kind in this order; a step with two fields set
# (which the controller rejects as InvalidSpec) is shown as the plugin shows it.
_STEP_ORDER: Final = (
    StepKind.SET_WEIGHT,
    StepKind.PAUSE,
    StepKind.EXPERIMENT,
    StepKind.ANALYSIS,
    StepKind.SET_CANARY_SCALE,
    StepKind.PLUGIN,
    StepKind.SET_HEADER_ROUTE,
    StepKind.SET_MIRROR_ROUTE,
)


def _seconds_text(seconds: int) -> str:
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    rest = abs(seconds)
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


@dataclass(frozen=True)
class SetWeightStep:
    index: int
    weight: int
    max_weight: int = _DEFAULT_MAX_WEIGHT
    kind: ClassVar[StepKind] = StepKind.SET_WEIGHT

    @property
    def text(self) -> str:
        if self.max_weight == _DEFAULT_MAX_WEIGHT:
            return f"set weight {self.weight}%"
        return f"set weight {self.weight}/{self.max_weight}"


@dataclass(frozen=True)
class PauseStep:
    """`pause: {}` waits for a promote; `pause: {duration: …}` waits that long.

    `duration` is the value as written (int = seconds, or a Go duration string);
    `seconds` is what the controller waits (`RolloutPause.DurationSeconds`): None for an
    indefinite pause, -1 for a string Go cannot parse (the controller's own marker).
    """

    index: int
    duration: int | str | None
    seconds: int | None
    kind: ClassVar[StepKind] = StepKind.PAUSE

    @property
    def indefinite(self) -> bool:
        return self.duration is None

    @property
    def valid(self) -> bool:
        return self.duration is None or pause_duration_seconds(self.duration) is not None

    @property
    def text(self) -> str:
        if self.seconds is None:
            return "pause (until promoted)"
        if not self.valid:
            return f"pause (invalid duration {self.duration!r})"
        return f"pause {_seconds_text(self.seconds)}"


@dataclass(frozen=True)
class AnalysisTemplateRef:
    name: str
    cluster_scope: bool = False


@dataclass(frozen=True)
class AnalysisArg:
    """One argument: a literal `value`, or where it comes from (`value_from`, as text)."""

    name: str
    value: str = ""
    value_from: str | None = None


@dataclass(frozen=True)
class AnalysisStep:
    index: int
    templates: tuple[AnalysisTemplateRef, ...]
    args: tuple[AnalysisArg, ...] = ()
    dry_run: tuple[str, ...] = ()  # metric names whose failures do not count
    kind: ClassVar[StepKind] = StepKind.ANALYSIS

    @property
    def text(self) -> str:
        if not self.templates:
            return "analysis (no templates)"
        return "analysis: " + ", ".join(t.name for t in self.templates)


@dataclass(frozen=True)
class ExperimentTemplate:
    name: str
    spec_ref: str  # "stable" or "canary"
    replicas: int | None = None
    weight: int | None = None


@dataclass(frozen=True)
class ExperimentStep:
    index: int
    templates: tuple[ExperimentTemplate, ...]
    duration: str = ""  # "" runs until its analyses finish (or forever without any)
    analyses: tuple[str, ...] = ()  # analysis template names
    kind: ClassVar[StepKind] = StepKind.EXPERIMENT

    @property
    def text(self) -> str:
        names = ", ".join(t.name for t in self.templates) or "no templates"
        text = f"experiment: {names}"
        if self.duration:
            text += f" for {self.duration}"
        if self.analyses:
            text += " (analysis: " + ", ".join(self.analyses) + ")"
        return text


@dataclass(frozen=True)
class SetCanaryScaleStep:
    index: int
    weight: int | None = None
    replicas: int | None = None
    match_traffic_weight: bool = False
    kind: ClassVar[StepKind] = StepKind.SET_CANARY_SCALE

    @property
    def text(self) -> str:
        # Same precedence as CanaryStepString: weight, then matchTrafficWeight, then replicas.
        if self.weight is not None:
            return f"canary scale {self.weight}%"
        if self.match_traffic_weight:
            return "canary scale follows traffic weight"
        if self.replicas is not None:
            return f"canary scale {self.replicas} replicas"
        return "canary scale (nothing set)"


@dataclass(frozen=True)
class StringMatch:
    """Argo's StringMatch: exactly one of exact / prefix / regex is meant to be set."""

    exact: str = ""
    prefix: str = ""
    regex: str = ""

    @property
    def text(self) -> str:
        if self.exact:
            return f"={self.exact}"
        if self.prefix:
            return f"={self.prefix}*"
        if self.regex:
            return f"~/{self.regex}/"
        return "=(any)"


@dataclass(frozen=True)
class HeaderMatch:
    header: str
    value: StringMatch | None

    @property
    def text(self) -> str:
        return self.header + (self.value.text if self.value is not None else "=(any)")


@dataclass(frozen=True)
class SetHeaderRouteStep:
    """Send requests matching headers to the canary; no `match` removes the route."""

    index: int
    name: str
    matches: tuple[HeaderMatch, ...] = ()
    kind: ClassVar[StepKind] = StepKind.SET_HEADER_ROUTE

    @property
    def removes(self) -> bool:
        return not self.matches

    @property
    def text(self) -> str:
        if self.removes:
            return f"header route {self.name}: removed"
        return f"header route {self.name}: " + ", ".join(m.text for m in self.matches)


@dataclass(frozen=True)
class MirrorMatch:
    method: StringMatch | None = None
    path: StringMatch | None = None
    headers: tuple[tuple[str, StringMatch], ...] = ()

    @property
    def text(self) -> str:
        parts = []
        if self.method is not None:
            parts.append("method" + self.method.text)
        if self.path is not None:
            parts.append("path" + self.path.text)
        parts.extend(name + match.text for name, match in self.headers)
        return " ".join(parts) or "all requests"


@dataclass(frozen=True)
class SetMirrorRouteStep:
    """Mirror matching traffic to the canary; no `match` removes the route."""

    index: int
    name: str
    matches: tuple[MirrorMatch, ...] = ()
    percentage: int | None = None  # None mirrors 100% (the Istio router's default)
    kind: ClassVar[StepKind] = StepKind.SET_MIRROR_ROUTE

    @property
    def removes(self) -> bool:
        return not self.matches

    @property
    def effective_percentage(self) -> int:
        return _DEFAULT_MIRROR_PERCENTAGE if self.percentage is None else self.percentage

    @property
    def mirrors(self) -> int:
        """The share of matching requests this step mirrors, 0..100 (0: it removes)."""
        return 0 if self.removes else max(0, min(100, self.effective_percentage))

    @property
    def text(self) -> str:
        if self.removes:
            return f"mirror route {self.name}: removed"
        what = "; ".join(m.text for m in self.matches)
        return f"mirror route {self.name}: {self.effective_percentage}% of {what}"

    @property
    def plan_text(self) -> str:
        """The step in a release plan's words: 'mirror 20% (route mirror-route)'.

        The match is named only when it narrows what is mirrored (the share is then a
        share of those requests, not of all traffic)."""
        if self.removes:
            return f"mirror off (route {self.name})"
        what = "; ".join(m.text for m in self.matches)
        narrowed = "" if what in ("all requests", "path=/*") else f" of {what}"
        return f"mirror {self.mirrors}%{narrowed} (route {self.name})"


@dataclass(frozen=True)
class PluginStep:
    index: int
    name: str
    config_json: str = "null"  # the plugin's config, canonical JSON (a dict is not hashable)
    kind: ClassVar[StepKind] = StepKind.PLUGIN

    @property
    def text(self) -> str:
        return f"plugin: {self.name}"


@dataclass(frozen=True)
class UnknownStep:
    """A step with none of the known fields: empty, or a kind newer than this module."""

    index: int
    keys: tuple[str, ...] = ()
    kind: ClassVar[StepKind] = StepKind.UNKNOWN

    @property
    def text(self) -> str:
        if not self.keys:
            return "empty step"
        return "unknown step (" + ", ".join(self.keys) + ")"


CanaryStep: TypeAlias = (
    SetWeightStep
    | PauseStep
    | AnalysisStep
    | ExperimentStep
    | SetCanaryScaleStep
    | SetHeaderRouteStep
    | SetMirrorRouteStep
    | PluginStep
    | UnknownStep
)


# Go's time.ParseDuration grammar: [sign] then one or more <number><unit>, or a bare "0".
_GO_UNITS: Final = {
    "ns": Fraction(1, 10**9),
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),  # U+00B5
    "μs": Fraction(1, 10**6),  # U+03BC
    "ms": Fraction(1, 10**3),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}
_GO_DURATION_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_GO_INT = re.compile(r"[+-]?[0-9]+")


def _go_parse_duration(text: str) -> Fraction | None:
    """Seconds for a Go duration string, or None where Go's ParseDuration errs."""
    body = text[1:] if text[:1] in ("+", "-") else text
    negative = text.startswith("-")
    if body == "0":
        return Fraction(0)
    if not body:
        return None
    total = Fraction(0)
    at = 0
    while at < len(body):
        part = _GO_DURATION_PART.match(body, at)
        if part is None:
            return None
        total += Fraction(part.group(1)) * _GO_UNITS[part.group(2)]
        at = part.end()
    if total * 10**9 > _INT64[1]:
        return None  # Go: "invalid duration" (overflows int64 nanoseconds)
    return -total if negative else total


def pause_duration_seconds(duration: int | str) -> int | None:
    """What `RolloutPause.DurationSeconds` gives for a written duration; None where it gives -1.

    An int is seconds; a string of digits is seconds (no unit); otherwise a Go duration
    ("30s", "5m", "1h30m"), truncated to whole seconds.
    """
    if isinstance(duration, int):
        return duration
    if _GO_INT.fullmatch(duration):
        value = int(duration)
        return value if _INT32[0] <= value <= _INT32[1] else None
    seconds = _go_parse_duration(duration)
    if seconds is None:
        return None
    return int(seconds)  # int() truncates towards zero, as Go's int32(d.Seconds()) does


def _string_match(value: object, path: str) -> StringMatch | None:
    if value is None:
        return None
    found = _as_obj(value, path)
    return StringMatch(
        exact=_str(found, "exact", path),
        prefix=_str(found, "prefix", path),
        regex=_str(found, "regex", path),
    )


def _analysis_templates(analysis: Mapping[str, Any], path: str) -> tuple[AnalysisTemplateRef, ...]:
    refs = []
    for i, item in enumerate(_list(analysis, "templates", path)):
        where = f"{path}.templates[{i}]"
        ref = _as_obj(item, where)
        refs.append(
            AnalysisTemplateRef(
                name=_str(ref, "templateName", where),
                cluster_scope=_bool(ref, "clusterScope", where),
            )
        )
    return tuple(refs)


def _analysis_args(parent: Mapping[str, Any], path: str) -> tuple[AnalysisArg, ...]:
    args = []
    for i, item in enumerate(_list(parent, "args", path)):
        where = f"{path}.args[{i}]"
        arg = _as_obj(item, where)
        value_from = _obj(arg, "valueFrom", where)
        source: str | None = None
        if value_from is not None:
            vf_path = f"{where}.valueFrom"
            hash_value = _str(value_from, "podTemplateHashValue", vf_path)
            field_ref = _obj(value_from, "fieldRef", vf_path)
            if hash_value:
                source = f"podTemplateHashValue: {hash_value}"
            elif field_ref is not None:
                source = "fieldRef: " + _str(field_ref, "fieldPath", f"{vf_path}.fieldRef")
            else:
                source = ""
        args.append(
            AnalysisArg(
                name=_str(arg, "name", where), value=_str(arg, "value", where), value_from=source
            )
        )
    return tuple(args)


def _metric_names(parent: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    names = []
    for i, item in enumerate(_list(parent, key, path)):
        where = f"{path}.{key}[{i}]"
        names.append(_str(_as_obj(item, where), "metricName", where))
    return tuple(names)


def _parse_step(raw: object, index: int, path: str, max_weight: int) -> CanaryStep:
    step = _as_obj(raw, path)
    kind = next((k for k in _STEP_ORDER if step.get(k.value) is not None), None)
    if kind is None:
        return UnknownStep(index, tuple(sorted(k for k, v in step.items() if v is not None)))
    where = _join(path, kind.value)
    if kind is StepKind.SET_WEIGHT:
        weight = _check_int(step["setWeight"], where, _INT32)
        return SetWeightStep(index, weight, max_weight)
    body = _as_obj(step[kind.value], where)
    if kind is StepKind.PAUSE:
        duration = body.get("duration")
        if duration is None:
            return PauseStep(index, None, None)
        if isinstance(duration, str):
            seconds = pause_duration_seconds(duration)
            return PauseStep(index, duration, -1 if seconds is None else seconds)
        # IntOrString: anything but a JSON string must decode as int32.
        value = _check_int(duration, f"{where}.duration", _INT32)
        return PauseStep(index, value, value)
    if kind is StepKind.ANALYSIS:
        return AnalysisStep(
            index,
            _analysis_templates(body, where),
            _analysis_args(body, where),
            _metric_names(body, "dryRun", where),
        )
    if kind is StepKind.EXPERIMENT:
        templates = []
        for i, item in enumerate(_list(body, "templates", where)):
            t_path = f"{where}.templates[{i}]"
            t = _as_obj(item, t_path)
            templates.append(
                ExperimentTemplate(
                    name=_str(t, "name", t_path),
                    spec_ref=_str(t, "specRef", t_path),
                    replicas=_int(t, "replicas", t_path),
                    weight=_int(t, "weight", t_path),
                )
            )
        analyses = []
        for i, item in enumerate(_list(body, "analyses", where)):
            a_path = f"{where}.analyses[{i}]"
            analyses.append(_str(_as_obj(item, a_path), "templateName", a_path))
        return ExperimentStep(
            index, tuple(templates), _str(body, "duration", where), tuple(analyses)
        )
    if kind is StepKind.SET_CANARY_SCALE:
        return SetCanaryScaleStep(
            index,
            weight=_int(body, "weight", where),
            replicas=_int(body, "replicas", where),
            match_traffic_weight=_bool(body, "matchTrafficWeight", where),
        )
    if kind is StepKind.PLUGIN:
        config = body.get("config")
        try:
            config_json = json.dumps(config, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError):
            raise RolloutFormatError(f"{where}.config", "is not JSON data") from None
        return PluginStep(index, _str(body, "name", where), config_json)
    if kind is StepKind.SET_HEADER_ROUTE:
        matches = []
        for i, item in enumerate(_list(body, "match", where)):
            m_path = f"{where}.match[{i}]"
            m = _as_obj(item, m_path)
            matches.append(
                HeaderMatch(
                    header=_str(m, "headerName", m_path),
                    value=_string_match(m.get("headerValue"), f"{m_path}.headerValue"),
                )
            )
        return SetHeaderRouteStep(index, _str(body, "name", where), tuple(matches))
    # StepKind.SET_MIRROR_ROUTE, the last of _STEP_ORDER
    mirror_matches = []
    for i, item in enumerate(_list(body, "match", where)):
        m_path = f"{where}.match[{i}]"
        m = _as_obj(item, m_path)
        headers = _obj_or_empty(m, "headers", m_path)
        mirror_matches.append(
            MirrorMatch(
                method=_string_match(m.get("method"), f"{m_path}.method"),
                path=_string_match(m.get("path"), f"{m_path}.path"),
                headers=tuple(
                    (str(name), match)
                    for name, value in sorted(headers.items())
                    if (match := _string_match(value, f"{m_path}.headers.{name}")) is not None
                ),
            )
        )
    return SetMirrorRouteStep(
        index, _str(body, "name", where), tuple(mirror_matches), _int(body, "percentage", where)
    )


# --------------------------------------------------------------------------------------
# The parsed Rollout: every field the rules read, decoded once so that a malformed field
# fails the same way whichever rule would have looked at it.


@dataclass(frozen=True)
class _Condition:
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class _Canary:
    steps: tuple[CanaryStep, ...]
    traffic_routing: bool
    max_weight: int


@dataclass(frozen=True)
class _BlueGreen:
    active_service: str
    preview_service: str
    auto_promotion_enabled: bool
    auto_promotion_seconds: int
    preview_replica_count: int | None
    pre_promotion_analysis: tuple[AnalysisTemplateRef, ...] | None
    post_promotion_analysis: tuple[AnalysisTemplateRef, ...] | None


@dataclass(frozen=True)
class _Rollout:
    name: str
    namespace: str
    uid: str
    generation: int
    replicas: int | None
    paused: bool
    restart_at: datetime | None
    canary: _Canary | None
    blue_green: _BlueGreen | None
    abort: bool
    pause_reasons: tuple[str, ...]
    controller_pause: bool
    current_step_index: int | None
    observed_generation: str
    phase: str
    message: str
    conditions: tuple[_Condition, ...]
    restarted_at: datetime | None
    status_replicas: int
    updated_replicas: int
    ready_replicas: int
    available_replicas: int
    stable_rs: str
    current_pod_hash: str
    active_selector: str
    preview_selector: str
    post_promotion_run_status: str | None  # None: no run status recorded at all
    canary_weight: int | None  # status.canary.weights.canary.weight; None: no weights


def _parse_canary(canary: Mapping[str, Any]) -> _Canary:
    path = "spec.strategy.canary"
    routing = _obj(canary, "trafficRouting", path)
    max_weight = _DEFAULT_MAX_WEIGHT
    if routing is not None:
        found = _int(routing, "maxTrafficWeight", f"{path}.trafficRouting")
        if found is not None:
            max_weight = found
    steps = tuple(
        _parse_step(raw, i, f"{path}.steps[{i}]", max_weight)
        for i, raw in enumerate(_list(canary, "steps", path))
    )
    return _Canary(steps, routing is not None, max_weight)


def _parse_blue_green(bg: Mapping[str, Any]) -> _BlueGreen:
    path = "spec.strategy.blueGreen"
    auto = _opt_bool(bg, "autoPromotionEnabled", path)
    pre = _obj(bg, "prePromotionAnalysis", path)
    post = _obj(bg, "postPromotionAnalysis", path)
    return _BlueGreen(
        active_service=_str(bg, "activeService", path),
        preview_service=_str(bg, "previewService", path),
        auto_promotion_enabled=True if auto is None else auto,
        auto_promotion_seconds=_int0(bg, "autoPromotionSeconds", path),
        preview_replica_count=_int(bg, "previewReplicaCount", path),
        pre_promotion_analysis=(
            None if pre is None else _analysis_templates(pre, f"{path}.prePromotionAnalysis")
        ),
        post_promotion_analysis=(
            None if post is None else _analysis_templates(post, f"{path}.postPromotionAnalysis")
        ),
    )


def _parse(rollout: object) -> _Rollout:
    ro = _as_obj(rollout, "rollout")
    kind = _str(ro, "kind", "")
    if kind and kind != "Rollout":
        raise RolloutFormatError("kind", f"expected 'Rollout', got {kind!r}")
    meta = _obj_or_empty(ro, "metadata", "")
    spec = _obj_or_empty(ro, "spec", "")
    status = _obj_or_empty(ro, "status", "")
    strategy = _obj_or_empty(spec, "strategy", "spec")
    canary = _obj(strategy, "canary", "spec.strategy")
    blue_green = _obj(strategy, "blueGreen", "spec.strategy")

    pause_reasons = []
    for i, item in enumerate(_list(status, "pauseConditions", "status")):
        where = f"status.pauseConditions[{i}]"
        pause_reasons.append(_str(_as_obj(item, where), "reason", where))

    conditions = []
    for i, item in enumerate(_list(status, "conditions", "status")):
        where = f"status.conditions[{i}]"
        cond = _as_obj(item, where)
        conditions.append(
            _Condition(
                _str(cond, "type", where), _str(cond, "reason", where), _str(cond, "message", where)
            )
        )

    step_index = _int(status, "currentStepIndex", "status")
    if step_index is not None and step_index < 0:
        # The plugin would index steps[-1] and panic; say so instead.
        raise RolloutFormatError("status.currentStepIndex", f"must be >= 0, got {step_index}")

    status_bg = _obj_or_empty(status, "blueGreen", "status")
    post_run = _obj(status_bg, "postPromotionAnalysisRunStatus", "status.blueGreen")
    status_canary = _obj_or_empty(status, "canary", "status")
    weights = _obj(status_canary, "weights", "status.canary")
    canary_weight: int | None = None
    if weights is not None:
        canary_side = _obj_or_empty(weights, "canary", "status.canary.weights")
        canary_weight = _int0(canary_side, "weight", "status.canary.weights.canary")

    return _Rollout(
        name=_str(meta, "name", "metadata"),
        namespace=_str(meta, "namespace", "metadata"),
        uid=_str(meta, "uid", "metadata"),
        generation=_int(meta, "generation", "metadata", _INT64) or 0,
        replicas=_int(spec, "replicas", "spec"),
        paused=_bool(spec, "paused", "spec"),
        restart_at=_time(spec, "restartAt", "spec"),
        canary=None if canary is None else _parse_canary(canary),
        blue_green=None if blue_green is None else _parse_blue_green(blue_green),
        abort=_bool(status, "abort", "status"),
        pause_reasons=tuple(pause_reasons),
        controller_pause=_bool(status, "controllerPause", "status"),
        current_step_index=step_index,
        observed_generation=_str(status, "observedGeneration", "status"),
        phase=_str(status, "phase", "status"),
        message=_str(status, "message", "status"),
        conditions=tuple(conditions),
        restarted_at=_time(status, "restartedAt", "status"),
        status_replicas=_int0(status, "replicas", "status"),
        updated_replicas=_int0(status, "updatedReplicas", "status"),
        ready_replicas=_int0(status, "readyReplicas", "status"),
        available_replicas=_int0(status, "availableReplicas", "status"),
        stable_rs=_str(status, "stableRS", "status"),
        current_pod_hash=_str(status, "currentPodHash", "status"),
        active_selector=_str(status_bg, "activeSelector", "status.blueGreen"),
        preview_selector=_str(status_bg, "previewSelector", "status.blueGreen"),
        post_promotion_run_status=(
            None
            if post_run is None
            else _str(post_run, "status", "status.blueGreen.postPromotionAnalysisRunStatus")
        ),
        canary_weight=canary_weight,
    )


# --------------------------------------------------------------------------------------
# Phase and message (rolloututil.go)


def _generation_observed(ro: _Rollout) -> bool:
    # Go's strconv.Atoi: optional sign, decimal digits, int64 range; anything else
    # (a v0.9 hash, "") counts as observed. So does a number above metadata.generation.
    if _GO_INT.fullmatch(ro.observed_generation) is None:
        return True
    observed = int(ro.observed_generation)
    if not _INT64[0] <= observed <= _INT64[1]:
        return True
    return observed >= ro.generation


def _fully_promoted(ro: _Rollout) -> bool:
    return ro.stable_rs == ro.current_pod_hash


def _calculate_phase(ro: _Rollout) -> tuple[str, str]:
    # Conditions come before pauses: a timed-out rollout that is also paused is Degraded.
    for cond in ro.conditions:
        if cond.type == CONDITION_INVALID_SPEC:
            return ArgoPhase.DEGRADED, f"{CONDITION_INVALID_SPEC}: {cond.message}"
        if cond.reason in (REASON_ABORTED, REASON_TIMED_OUT):
            return ArgoPhase.DEGRADED, f"{cond.reason}: {cond.message}"
    if ro.paused:
        return ArgoPhase.PAUSED, MSG_MANUALLY_PAUSED
    if ro.pause_reasons:
        return ArgoPhase.PAUSED, ro.pause_reasons[0]
    if ro.restart_at is not None and (ro.restarted_at is None or ro.restart_at != ro.restarted_at):
        return ArgoPhase.PROGRESSING, MSG_RESTARTING
    desired = _DEFAULT_REPLICAS if ro.replicas is None else ro.replicas
    if ro.updated_replicas < desired:
        return ArgoPhase.PROGRESSING, MSG_MORE_REPLICAS
    if ro.available_replicas < ro.updated_replicas:
        return ArgoPhase.PROGRESSING, MSG_BECOMING_AVAILABLE
    # Blue-green is checked first here (NewRolloutInfo checks canary first); both set is
    # an InvalidSpec the controller reports, so the order only matters for bad input.
    if ro.blue_green is not None:
        if not ro.active_selector or ro.active_selector != ro.current_pod_hash:
            return ArgoPhase.PROGRESSING, MSG_CUTOVER_PENDING
        if not ro.stable_rs or not _fully_promoted(ro):
            waiting_for_analysis = ro.blue_green.post_promotion_analysis is not None and (
                ro.post_promotion_run_status not in _ANALYSIS_COMPLETED
            )
            if waiting_for_analysis:
                return ArgoPhase.PROGRESSING, MSG_WAITING_ANALYSIS
            return ArgoPhase.PROGRESSING, MSG_WAITING_VERIFICATION
    elif ro.canary is not None:
        # Only without a traffic router: with one, scaleDownDelay keeps old pods on purpose.
        if not ro.canary.traffic_routing and ro.status_replicas > ro.updated_replicas:
            return ArgoPhase.PROGRESSING, MSG_OLD_REPLICAS
        if not ro.stable_rs or not _fully_promoted(ro):
            return ArgoPhase.PROGRESSING, MSG_WAITING_STEPS
    return ArgoPhase.HEALTHY, ""


def _phase(ro: _Rollout) -> tuple[str, str]:
    if not _generation_observed(ro):
        return ArgoPhase.PROGRESSING, MSG_SPEC_NOT_OBSERVED
    # The user cleared the pause conditions (promote) and the controller has not reacted.
    if ro.controller_pause and not ro.pause_reasons:
        return ArgoPhase.PROGRESSING, MSG_UNPAUSING
    # The workloadRef check (TemplateResolvedFromRef) depends on a Go-only field that a
    # client never sees set, so it never fires in the plugin and is left out here.
    if ro.phase:
        # Controller v1.0+ computes phase/message itself; pass them through unchanged.
        return ro.phase, ro.message
    return _calculate_phase(ro)


def rollout_phase(rollout: Mapping[str, Any]) -> tuple[str, str]:
    """(phase, message) exactly as `GetRolloutPhase` computes them."""
    phase, message = _phase(_parse(rollout))
    return str(phase), message


def canary_steps(rollout: Mapping[str, Any]) -> tuple[CanaryStep, ...]:
    """The step plan of spec.strategy.canary.steps (empty for blue-green)."""
    ro = _parse(rollout)
    return () if ro.canary is None else ro.canary.steps


def mirror_steps(rollout: Mapping[str, Any]) -> list[int]:
    """Indices of the canary steps that turn a mirror on (setMirrorRoute with a match and
    a share above 0), in order; empty when the plan mirrors nothing (strategy shadow
    needs at least one). A setMirrorRoute with only a name removes its route and is not
    counted. Raises RolloutFormatError like `view`.

    Argo rejects setMirrorRoute without spec.strategy.canary.trafficRouting (InvalidSpec,
    "SetMirrorRoute requires TrafficRouting"), so such steps are still listed: the plan
    has them, and the Rollout's phase says why they do not run.
    """
    return [s.index for s in canary_steps(rollout)
            if isinstance(s, SetMirrorRouteStep) and s.mirrors > 0]


# --------------------------------------------------------------------------------------
# ReplicaSets: which is stable, which is canary (replicaset_info.go)


@dataclass(frozen=True)
class SideCounts:
    """One side's ReplicaSet and its pod counts, from the ReplicaSet's own status."""

    replica_set: str
    pod_template_hash: str
    replicas: int
    ready: int
    available: int

    @property
    def all_ready(self) -> bool:
        return self.ready >= self.replicas


@dataclass(frozen=True)
class ReplicaCounts:
    """The plugin's Replicas block: Desired, Current, Updated, Ready, Available."""

    desired: int
    current: int
    updated: int
    ready: int
    available: int


def _revision(annotations: Mapping[str, Any], path: str) -> int:
    text = _str(annotations, REVISION_ANNOTATION, path)
    # parseRevision: an unparsable revision sorts as 0.
    return int(text) if _GO_INT.fullmatch(text) else 0


def _sides(
    ro: _Rollout, replica_sets: Sequence[Mapping[str, Any]]
) -> tuple[SideCounts | None, SideCounts | None]:
    owned: list[tuple[int, str, str, SideCounts]] = []
    for i, raw in enumerate(replica_sets):
        path = f"replicaSets[{i}]"
        rs = _as_obj(raw, path)
        meta = _obj_or_empty(rs, "metadata", path)
        m_path = f"{path}.metadata"
        owners = []
        for j, ref in enumerate(_list(meta, "ownerReferences", m_path)):
            r_path = f"{m_path}.ownerReferences[{j}]"
            owners.append(_str(_as_obj(ref, r_path), "uid", r_path))
        if ro.uid not in owners:
            continue
        labels = _obj_or_empty(meta, "labels", m_path)
        pod_hash = _str(labels, POD_TEMPLATE_HASH_LABEL, f"{m_path}.labels")
        status = _obj_or_empty(rs, "status", path)
        s_path = f"{path}.status"
        name = _str(meta, "name", m_path)
        counts = SideCounts(
            replica_set=name,
            pod_template_hash=pod_hash,
            replicas=_int0(status, "replicas", s_path),
            ready=_int0(status, "readyReplicas", s_path),
            available=_int0(status, "availableReplicas", s_path),
        )
        revision = _revision(_obj_or_empty(meta, "annotations", m_path), f"{m_path}.annotations")
        owned.append((revision, name, pod_hash, counts))
    # The plugin's order (newest revision first, then name); where two ReplicaSets claim
    # a side, the later one wins, as in NewRolloutInfo's loop.
    owned.sort(key=lambda entry: (-entry[0], entry[1]))
    stable: SideCounts | None = None
    canary: SideCounts | None = None
    for _, _, pod_hash, counts in owned:
        if pod_hash == ro.stable_rs:
            stable = counts
        elif pod_hash == ro.current_pod_hash:
            canary = counts
    return stable, canary


# --------------------------------------------------------------------------------------
# Weights (rollout_info.go NewRolloutInfo, canary.go)


def _current_step(ro: _Rollout) -> tuple[int | None, CanaryStep | None]:
    if ro.canary is None or not ro.canary.steps:
        return None, None
    # GetCurrentCanaryStep reads a missing index as 0.
    index = 0 if ro.current_step_index is None else ro.current_step_index
    if index >= len(ro.canary.steps):
        return index, None
    return index, ro.canary.steps[index]


def _set_weight(ro: _Rollout) -> int | None:
    if ro.canary is None:
        return None
    if ro.abort:
        return 0
    index, step = _current_step(ro)
    if step is None or index is None:
        return ro.canary.max_weight
    for earlier in reversed(ro.canary.steps[: index + 1]):
        if isinstance(earlier, SetWeightStep):
            return earlier.weight
    return 0


def _mirror_routes(ro: _Rollout) -> tuple[tuple[str, int], ...]:
    """The mirror routes the traffic router holds now, (name, percent), in step order.

    The setMirrorRoute steps completed so far (status.currentStepIndex counts them: the
    controller applies a mirror step and moves past it in one reconcile), each replacing
    or, with no match, removing its named route. None while aborted or once fully
    promoted, where the controller calls RemoveManagedRoutes (rollout/trafficrouting.go),
    and none without a traffic router, which is the only thing that can mirror.
    """
    if ro.canary is None or not ro.canary.traffic_routing or ro.abort:
        return ()
    if ro.stable_rs and _fully_promoted(ro):
        return ()
    done = 0 if ro.current_step_index is None else ro.current_step_index
    routes: dict[str, int] = {}
    for step in ro.canary.steps[:done]:
        if isinstance(step, SetMirrorRouteStep):
            routes.pop(step.name, None)
            if step.mirrors > 0:
                routes[step.name] = step.mirrors
    return tuple(routes.items())


def _trunc_div(a: int, b: int) -> int:
    # Go's integer division truncates towards zero; Python's // floors.
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b > 0) else -quotient


def _actual_weight(
    ro: _Rollout, set_weight: int | None, canary_rs: SideCounts | None, have_rs: bool
) -> int | None:
    if ro.canary is None:
        return None
    _, step = _current_step(ro)
    if step is None:
        return ro.canary.max_weight
    if ro.available_replicas <= 0:
        return 0
    if ro.canary.traffic_routing:
        return set_weight if ro.canary_weight is None else ro.canary_weight
    if not have_rs:
        # The plugin always has the ReplicaSets; without them the share is unknown, and
        # unknown is not 0.
        return None
    if canary_rs is None:
        return 0
    return _trunc_div(canary_rs.available * ro.canary.max_weight, ro.available_replicas)


# --------------------------------------------------------------------------------------
# Blue-green as two stages


@dataclass(frozen=True)
class BlueGreenStage:
    name: Literal["preview", "promote"]
    text: str


@dataclass(frozen=True)
class BlueGreenView:
    """A blue-green rollout as two stages: the new version on preview, then the cut-over.

    `current_stage` is 0 while the active service still points at the old version, 1 once
    it points at the new one but the controller has not yet marked it stable
    (post-promotion analysis or verification), and 2 when fully promoted.
    """

    active_service: str
    preview_service: str
    auto_promotion_enabled: bool
    auto_promotion_seconds: int
    preview_replica_count: int | None
    pre_promotion_analysis: tuple[str, ...]
    post_promotion_analysis: tuple[str, ...]
    active_selector: str
    preview_selector: str
    stages: tuple[BlueGreenStage, BlueGreenStage]
    current_stage: int


def _blue_green_view(ro: _Rollout) -> BlueGreenView | None:
    bg = ro.blue_green
    if bg is None:
        return None
    pre = tuple(t.name for t in bg.pre_promotion_analysis or ())
    post = tuple(t.name for t in bg.post_promotion_analysis or ())
    preview = f"preview: new version on {bg.preview_service or '(no preview service)'}"
    if pre:
        preview += ", analysis: " + ", ".join(pre)
    if not bg.auto_promotion_enabled:
        preview += ", then wait for promote"
    elif bg.auto_promotion_seconds > 0:
        preview += f", then promote after {_seconds_text(bg.auto_promotion_seconds)}"
    else:
        preview += ", then promote automatically"
    promote = f"promote: {bg.active_service or '(no active service)'} switches to the new version"
    if post:
        promote += ", analysis: " + ", ".join(post)
    cut_over = bool(ro.active_selector) and ro.active_selector == ro.current_pod_hash
    if cut_over and ro.stable_rs and _fully_promoted(ro):
        stage = 2
    elif cut_over:
        stage = 1
    else:
        stage = 0
    return BlueGreenView(
        active_service=bg.active_service,
        preview_service=bg.preview_service,
        auto_promotion_enabled=bg.auto_promotion_enabled,
        auto_promotion_seconds=bg.auto_promotion_seconds,
        preview_replica_count=bg.preview_replica_count,
        pre_promotion_analysis=pre,
        post_promotion_analysis=post,
        active_selector=ro.active_selector,
        preview_selector=ro.preview_selector,
        stages=(BlueGreenStage("preview", preview), BlueGreenStage("promote", promote)),
        current_stage=stage,
    )


# --------------------------------------------------------------------------------------
# The view


@dataclass(frozen=True)
class RolloutView:
    """One Rollout as `kubectl argo rollouts get` shows it, plus the parsed step plan.

    `current_step_index` is status.currentStepIndex as written (None when unset or when
    there are no steps); `current_step` is the step the controller is at, reading a
    missing index as 0 as it does (None once past the last step). `set_weight` and
    `actual_weight` are None for blue-green; `actual_weight` is also None for a canary
    without a traffic router when no ReplicaSets were given. `stable` and `canary` are
    None when no ReplicaSets were given or none matches that side ("canary" is the new
    version, also for blue-green).
    """

    name: str
    namespace: str
    strategy: Literal["Canary", "BlueGreen"] | None
    phase: str
    message: str
    generation_observed: bool
    aborted: bool
    manually_paused: bool
    pause_reasons: tuple[str, ...]
    fully_promoted: bool
    steps: tuple[CanaryStep, ...]
    current_step_index: int | None
    current_step: CanaryStep | None
    set_weight: int | None
    actual_weight: int | None
    max_weight: int | None
    traffic_routing: bool
    replicas: ReplicaCounts
    stable: SideCounts | None
    canary: SideCounts | None
    blue_green: BlueGreenView | None
    stable_hash: str
    current_hash: str
    # Mirror routes the router holds now, (name, percent); `mirror` is the largest share,
    # 0 for none. Derived from the steps completed: Argo records no mirror in the status.
    mirror_routes: tuple[tuple[str, int], ...] = ()

    @property
    def mirror(self) -> int:
        return max((percent for _, percent in self.mirror_routes), default=0)

    @property
    def step_count(self) -> int:
        return len(self.steps)

    @property
    def step_text(self) -> str | None:
        """The plugin's Step line, "index/count", or None where the plugin leaves it blank."""
        if self.current_step_index is None:
            return None
        return f"{self.current_step_index}/{self.step_count}"

    def controller_dict(self) -> dict[str, Any]:
        """The "controller" object of `relconsole status --json`.

        `step` is the number the plugin prints before the slash: status.currentStepIndex,
        i.e. steps completed (0 at the first step, equal to `steps` when done), or None.
        `steps` is None for a rollout that is not a canary.
        """
        return {
            "phase": self.phase,
            "message": self.message,
            "step": self.current_step_index,
            "steps": self.step_count if self.strategy == "Canary" else None,
            "set_weight": self.set_weight,
            "actual_weight": self.actual_weight,
        }


def view(
    rollout: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]] | None = None
) -> RolloutView:
    """Read `rollout` (and, optionally, the namespace's ReplicaSets) as the plugin does.

    `replica_sets` are the ReplicaSet objects the plugin would list; only those owned by
    this Rollout's UID count. Without them the per-side pod counts are unknown, and so is
    the actual weight of a canary without a traffic router.

    Raises RolloutFormatError (a ValueError) naming the field when a field has a wrong type.
    """
    ro = _parse(rollout)
    if replica_sets is not None and not isinstance(replica_sets, Sequence):
        raise RolloutFormatError("replicaSets", "expected a list of ReplicaSet objects")
    stable, canary_rs = _sides(ro, replica_sets) if replica_sets is not None else (None, None)
    phase, message = _phase(ro)
    # A plain str, not an ArgoPhase: a controller-computed phase is passed through as is.
    phase = str(phase)
    strategy: Literal["Canary", "BlueGreen"] | None
    # NewRolloutInfo's order: canary first.
    if ro.canary is not None:
        strategy = "Canary"
    elif ro.blue_green is not None:
        strategy = "BlueGreen"
    else:
        strategy = None
    steps = ro.canary.steps if ro.canary is not None else ()
    _, step = _current_step(ro)
    set_weight = _set_weight(ro)
    return RolloutView(
        name=ro.name,
        namespace=ro.namespace,
        strategy=strategy,
        phase=phase,
        message=message,
        generation_observed=_generation_observed(ro),
        aborted=ro.abort,
        manually_paused=ro.paused,
        pause_reasons=ro.pause_reasons,
        fully_promoted=_fully_promoted(ro),
        steps=steps,
        current_step_index=ro.current_step_index if steps else None,
        current_step=step,
        set_weight=set_weight,
        actual_weight=_actual_weight(ro, set_weight, canary_rs, replica_sets is not None),
        max_weight=ro.canary.max_weight if ro.canary is not None else None,
        traffic_routing=ro.canary is not None and ro.canary.traffic_routing,
        replicas=ReplicaCounts(
            desired=_DEFAULT_REPLICAS if ro.replicas is None else ro.replicas,
            current=ro.status_replicas,
            updated=ro.updated_replicas,
            ready=ro.ready_replicas,
            available=ro.available_replicas,
        ),
        stable=stable,
        canary=canary_rs,
        blue_green=_blue_green_view(ro) if strategy == "BlueGreen" else None,
        stable_hash=ro.stable_rs,
        current_hash=ro.current_pod_hash,
        mirror_routes=_mirror_routes(ro),
    )
