"""Domain values shared by every layer: steps, readings, verdicts, phases, flags.

Everything here is an immutable value with no I/O, so the engine, the providers and both
front ends can pass them around freely.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from relconsole import units
from relconsole.schedule import Schedule


class Phase(StrEnum):
    """Where the release stands. Terminal phases end a headless run."""

    PENDING = "pending"  # attached, canary not yet receiving traffic
    PROGRESSING = "progressing"  # baking at a step
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"  # retrying; never reported done until verified

    @property
    def terminal(self) -> bool:
        return self in (Phase.PROMOTED, Phase.ROLLED_BACK)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").upper()


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Mode(StrEnum):
    DRIVE = "drive"
    WATCH = "watch"


class Role(StrEnum):
    """Which side of the comparison a metric value belongs to."""

    CANARY = "canary"
    BASELINE = "baseline"


# Strategies whose steps route by more than a weight: the engine calls set_route.
ROUTED_STRATEGIES = ("ab", "rolling", "shadow")


@dataclass(frozen=True)
class Route:
    """What a step sends to the new version besides the weight (release.strategy).

    Cumulative: a step's route holds what every step up to it turned on, so a plan only
    ever grows and "where is the release" is the last step whose route and weight the
    provider's read covers. All empty for a plain canary.
    """

    cohorts: tuple[str, ...] = ()  # ab: cohorts (Cohort.name) routed to the canary
    mirror: int = 0  # shadow: percent of live requests copied to the canary, answers dropped
    batches: int = 0  # rolling: batches of servers updated in place to the new version

    def __bool__(self) -> bool:
        return bool(self.cohorts or self.mirror or self.batches)

    def covers(self, other: Route) -> bool:
        """Whether this route has at least everything `other` turned on."""
        return (set(other.cohorts) <= set(self.cohorts) and self.mirror >= other.mirror
                and self.batches >= other.batches)

    def same(self, other: Route) -> bool:
        """Equal as routes go (the order cohorts were listed in does not matter)."""
        return (set(self.cohorts) == set(other.cohorts) and self.mirror == other.mirror
                and self.batches == other.batches)

    def text(self) -> str:
        """'cohort beta-users · mirror 20% · 2 batches', '' when empty."""
        parts = []
        if self.cohorts:
            parts.append(("cohorts " if len(self.cohorts) > 1 else "cohort ")
                         + ", ".join(self.cohorts))
        if self.mirror:
            parts.append(f"mirror {self.mirror}%")
        if self.batches:
            parts.append(f"{self.batches} batch{'es' if self.batches > 1 else ''}")
        return " · ".join(parts)


@dataclass(frozen=True)
class Cohort:
    """Users routed to the canary by who they are, not by chance (release.cohorts).

    Exactly one way to pick them: a header's or a cookie's value among `values`, or a
    sticky hash of a user id (`hash`, the header carrying it) into 100 buckets, of which
    `percent` go to the canary, so the same user always sees the same version.
    """

    name: str
    header: str = ""
    cookie: str = ""
    values: tuple[str, ...] = ()
    hash: str = ""
    percent: int = 0

    def describe(self) -> str:
        if self.hash:
            return f"{self.percent}% of users by {self.hash} (sticky hash)"
        where = f"header {self.header}" if self.header else f"cookie {self.cookie}"
        return f"{where} = {' or '.join(self.values)}"


@dataclass(frozen=True)
class Step:
    weight: int  # percent of traffic on the canary, 0..100
    bake: float = 0.0  # seconds to stay at this weight before advancing
    at: str = ""  # not begun before this clock time (release.timezone), "" for none
    route: Route = field(default_factory=Route)  # cohorts, mirror, batches (cumulative)
    label: str = ""  # what the step is in the strategy's words ("switch", "batch 2/4")


@dataclass(frozen=True)
class Reading:
    """One metric value for one version, or why there is none.

    `at` is the clock time the value was taken; a reading with an error or a
    non-finite value is never usable as evidence (safety rule 1).
    """

    value: float | None
    at: float
    error: str | None = None

    @property
    def usable(self) -> bool:
        return self.error is None and self.value is not None and math.isfinite(self.value)

    @property
    def problem(self) -> str | None:
        """Why this reading cannot be used, in words an operator understands."""
        if self.error is not None:
            return self.error
        if self.value is None:
            return "no data"
        if math.isnan(self.value):
            return "value is NaN"
        if math.isinf(self.value):
            return "value is infinite"
        return None


@dataclass(frozen=True)
class MetricPair:
    canary: Reading
    baseline: Reading


@dataclass(frozen=True)
class CountSource:
    """Where a metric's counts come from: counter selectors, each with `{{version}}`.

    Either `events` and `total` (errors and requests, say: the metric is events/total),
    or a histogram's `buckets` selector (a `_bucket` series) with the `quantile` the
    gate is about; then the events are the requests slower than the baseline's
    quantile bucket. `derived` says the selectors were read out of the metric's
    `query:` (a ratio of summed rates) rather than written as `counts:`/`histogram:`.
    """

    events: str = ""
    total: str = ""
    buckets: str = ""
    quantile: float | None = None
    derived: bool = False

    @property
    def histogram(self) -> bool:
        return bool(self.buckets)

    @property
    def count(self) -> str:
        """The histogram's `_count` selector, named after its `_bucket` one."""
        if not self.buckets:
            return ""
        head, sep, rest = self.buckets.partition("{")
        name = head.strip()
        if name.endswith("_bucket"):
            name = name[: -len("_bucket")] + "_count"
        return f"{name}{sep}{rest}"

    def describe(self) -> str:
        """'events A, total B' or 'requests slower than the baseline's p99 bucket of B'."""
        if self.histogram:
            q = self.quantile if self.quantile is not None else 0.0
            return f"requests slower than the baseline's p{q * 100:g} bucket of {self.buckets}"
        return f"events {self.events}, total {self.total}"


def series_key(labels: Mapping[str, str]) -> str:
    """A series' identity as `CounterSet` keys it: its labels, sorted, as JSON text."""
    return json.dumps({str(k): str(v) for k, v in labels.items()}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)


def series_labels(key: str) -> dict[str, str]:
    """The labels of a `series_key` (empty for a key that is not one)."""
    try:
        found = json.loads(key)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


@dataclass(frozen=True)
class CounterSet:
    """Raw cumulative counter values of one version at one instant, per series.

    For a histogram metric `events` holds the `_bucket` series (each key has its `le`)
    and `total` the `_count` series.
    """

    events: Mapping[str, float]  # series identity (its labels, sorted, as text) -> value
    total: Mapping[str, float]  # the exposure counters (requests), same keys style
    at: float
    error: str | None = None  # why it could not be read (then events/total are empty)


@dataclass(frozen=True)
class CounterPair:
    canary: CounterSet | None
    baseline: CounterSet | None


@dataclass(frozen=True)
class Tally:
    """One poll's increments for one version: whole requests and the events among them."""

    events: float  # errors, requests slower than the threshold, orders, ...
    total: float  # requests in the same interval


@dataclass(frozen=True)
class CountPair:
    """What the judge sees of one metric in one poll (increments since the last poll)."""

    canary: Tally | None  # None: no traffic data (requests series missing or errored)
    baseline: Tally | None
    at: float
    problem: str | None = None  # why a side is None, in words
    threshold: float | None = None
    """For a histogram metric: the bucket boundary `le` (in the metric's unit) the
    events are counted above — the baseline's quantile bucket; None otherwise."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    query: str = ""
    unit: str = ""  # "ratio" (shown as %), "seconds" (shown as ms), or free text
    dashboard: str = ""  # a link template; may hold {{version}} and {{baseline}}
    counts: CountSource | None = None  # judged on counts; None: judged on values
    values_why: str = ""  # why it is judged on values (shown by `check` and the gates panel)
    # One series, the canary's, with no version to swap in: an Argo AnalysisTemplate's
    # query selects the canary itself (by its pod-template hash, say). Only gates with
    # absolute limits (max, min) can judge it; the baseline is not measured.
    canary_only: bool = False

    def judging(self) -> str:
        """How its gates judge it, in words: 'judged on counts: events …, total …'."""
        if self.counts is None:
            return "judged on values" + (f": {self.values_why}" if self.values_why else "")
        derived = ", derived from the query" if self.counts.derived else ""
        return f"judged on counts: {self.counts.describe()}{derived}"


@dataclass(frozen=True)
class GateSpec:
    metric: str
    max: float | None = None
    min: float | None = None
    max_increase: float | None = None  # canary - baseline must not exceed this
    max_ratio: float | None = None  # canary / baseline must not exceed this
    failure_limit: int = 1  # consecutive failing polls before the gate trips
    inconclusive_limit: int = 6  # consecutive inconclusive polls before the release pauses
    max_decrease: float | None = None  # baseline - canary must not exceed this
    min_ratio: float | None = None  # canary / baseline must not fall below this
    alpha: float = 0.01
    """On counts: the chance a healthy canary is ever failed by this gate, over a whole
    step however often it is polled (anytime-valid); also 1 - the confidence of a PASS."""
    health: str | None = None  # a health gate: the role whose servers it counts ("canary")
    # An inconclusive band (imported from an Argo AnalysisTemplate whose conditions leave
    # values between pass and fail): a value below min but not below inconclusive_min (or
    # above max but not above inconclusive_max) is INCONCLUSIVE, as Argo calls it.
    inconclusive_min: float | None = None
    inconclusive_max: float | None = None
    min_up: float | None = None  # servers that must be up: a count, or a share (min_up_share)
    min_up_share: bool = False  # min_up is a share of the servers (written '66%'), 0..1

    @property
    def is_health(self) -> bool:
        return self.health is not None

    def describe(self, value_text: Callable[[float], str] = "{:g}".format) -> str:
        """The threshold in one short phrase, e.g. '≤0.01 Δ≤0.001 ×≤1.2'.

        `value_text` writes the limits that are in the metric's own unit (max, min,
        max_increase), so the TUI can say '≤1 % Δ≤0.1 %' from the same phrasing; the
        ratio to the baseline has no unit and is always written as a plain number.
        """
        parts: list[str] = []
        if self.max is not None:
            parts.append(f"≤{value_text(self.max)}")
        if self.min is not None:
            parts.append(f"≥{value_text(self.min)}")
        # An inconclusive band: where the gate fails ("?≥0.5": inconclusive down to 0.5).
        if self.inconclusive_min is not None and math.isfinite(self.inconclusive_min):
            parts.append(f"?≥{value_text(self.inconclusive_min)}")
        if self.inconclusive_max is not None and math.isfinite(self.inconclusive_max):
            parts.append(f"?≤{value_text(self.inconclusive_max)}")
        if self.max_increase is not None:
            parts.append(f"Δ≤{value_text(self.max_increase)}")
        if self.max_decrease is not None:
            parts.append(f"Δ≥−{value_text(self.max_decrease)}")
        if self.max_ratio is not None:
            parts.append(f"×≤{self.max_ratio:g}")
        if self.min_ratio is not None:
            parts.append(f"×≥{self.min_ratio:g}")
        if self.min_up is not None:
            shown = f"{self.min_up * 100:g}%" if self.min_up_share else f"{self.min_up:g}"
            parts.append(f"up≥{shown}")
        return " ".join(parts) or "—"


@dataclass(frozen=True)
class GateEvidence:
    """What a gate judged on counts saw in the current step, and what it concluded.

    Filled by `engine/gates.py` from `engine/evidence.py`'s judgement, for the screen
    and the journal: a reviewer can check a rollback from these numbers alone.
    """

    canary_events: float
    canary_total: float
    baseline_events: float
    baseline_total: float
    alpha: float
    e_value: float  # against the limits: FAIL once it reaches 1/alpha
    pass_e_value: float  # for "the limits hold": PASS once it reaches 1/alpha
    estimate: float | None = None  # the canary's rate in this step
    baseline_rate: float | None = None
    low: float | None = None  # interval for the canary's rate (Wilson, at alpha)
    high: float | None = None
    needs: int | None = None  # about how many more canary requests before PASS

    def as_dict(self) -> dict[str, object]:
        return {
            "canary_events": self.canary_events, "canary_total": self.canary_total,
            "baseline_events": self.baseline_events, "baseline_total": self.baseline_total,
            "estimate": self.estimate, "baseline_rate": self.baseline_rate,
            "low": self.low, "high": self.high, "alpha": self.alpha,
            "e_value": self.e_value, "pass_e_value": self.pass_e_value, "needs": self.needs,
        }


@dataclass(frozen=True)
class GateStatus:
    """The latest verdict of one gate and the counters behind it."""

    spec: GateSpec
    verdict: Verdict
    reason: str
    canary: float | None = None
    baseline: float | None = None
    consecutive_failures: int = 0
    consecutive_inconclusive: int = 0
    passed_this_step: bool = False
    unit: str = ""
    """The metric's unit (`units.unit_of`): how its values and limits are written."""
    judged: str = ""
    """'counts', or 'values' with why ('values: the query is not a ratio of counters');
    '' for a health gate or before the first poll."""
    evidence: GateEvidence | None = None  # a gate judged on counts: the numbers behind it

    @property
    def name(self) -> str:
        return self.spec.metric

    @property
    def tripped(self) -> bool:
        return self.consecutive_failures >= self.spec.failure_limit

    @property
    def needs_more_data(self) -> bool:
        """Judged on counts, traffic flowing, no breach shown, not enough shown healthy
        yet: the bake's state, not "no data" (which counts toward inconclusive_limit)."""
        return (self.verdict is Verdict.INCONCLUSIVE and self.evidence is not None
                and self.evidence.canary_total > 0 and self.consecutive_inconclusive == 0)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "gate": self.name,
            "verdict": self.verdict.value,
            "canary": self.canary,
            "baseline": self.baseline,
            "unit": self.unit,
            "threshold": units.threshold(self.spec, self.unit),
            "consecutive_failures": self.consecutive_failures,
            "reason": self.reason,
        }
        if self.evidence is not None:
            out["judged"] = "counts"
            out["evidence"] = self.evidence.as_dict()
        return out


@dataclass(frozen=True)
class ServerHealth:
    name: str
    role: Role
    up: bool
    detail: str = ""


@dataclass(frozen=True)
class ControllerStep:
    """One step of a plan that a controller owns (an Argo Rollout's steps), for the screen.

    `weight` is the canary's set weight while the controller stands at this step (the
    last setWeight at or before it). `pause` is the seconds of a timed pause; `waits` marks
    a step where the controller waits for a promote (a pause without duration, a
    blue-green preview without auto-promotion).
    """

    text: str
    weight: int
    pause: float | None = None
    waits: bool = False


@dataclass(frozen=True)
class AnalysisVerdict:
    """One AnalysisRun of the controller's, as it judged (Argo's phase words)."""

    name: str
    phase: str  # Pending, Running, Successful, Failed, Error, Inconclusive
    message: str = ""
    metrics: tuple[tuple[str, str], ...] = ()  # (metric name, its phase)


@dataclass(frozen=True)
class ControllerState:
    """What a controller that owns the release (Argo Rollouts) says of it, read as its
    own CLI reads it.

    `step` is the controller's own step number (Argo: status.currentStepIndex, the steps
    completed; equal to `steps` when done). `waiting` is true while it waits for a
    promote; `manually_paused` while someone paused it (spec.paused); `aborted` once it
    was aborted. `last_action` is the last relconsole action written on the resource
    ("abort by alice@bastion: p99 doubled"), so a console attaching later says who.
    """

    system: str  # "Argo Rollouts"
    resource: str  # "rollout payments/checkout"
    phase: str
    message: str
    step: int | None
    steps: int | None
    set_weight: int | None
    actual_weight: int | None
    plan: tuple[ControllerStep, ...] = ()
    strategy: str = "Canary"
    waiting: bool = False
    manually_paused: bool = False
    aborted: bool = False
    fully_promoted: bool = False
    analysis: tuple[AnalysisVerdict, ...] = ()
    last_action: str = ""

    def as_json(self) -> dict[str, object]:
        """The "controller" object of `relconsole status --json`."""
        return {
            "phase": self.phase,
            "message": self.message,
            "step": self.step,
            "steps": self.steps,
            "set_weight": self.set_weight,
            "actual_weight": self.actual_weight,
        }


@dataclass(frozen=True)
class TrafficState:
    canary_weight: int
    servers: tuple[ServerHealth, ...] = ()
    # Set by a provider whose controller owns the step plan; `canary_weight` is then the
    # weight really applied (Argo's actual weight), not the one the step asks for.
    controller: ControllerState | None = None
    # What besides the weight routes to the new version now (cohorts, mirror, batches).
    route: Route = field(default_factory=Route)
    # What the provider wants the operator to know about the last move ("blue drained
    # in 1.2s"; "green preview healthy at http://…"); "" for nothing.
    note: str = ""

    def health_line(self) -> str:
        """'canary 2/2 up · stable 2/2 up', or '' when the provider does not report health."""
        out = []
        for role in (Role.CANARY, Role.BASELINE):
            group = [s for s in self.servers if s.role is role]
            if group:
                up = sum(s.up for s in group)
                name = "canary" if role is Role.CANARY else "stable"
                out.append(f"{name} {up}/{len(group)} up")
        return " · ".join(out)


class FlagKind(StrEnum):
    RELEASE = "release"
    EXPERIMENT = "experiment"
    OPERATIONAL = "operational"
    KILL_SWITCH = "kill-switch"
    PERMISSION = "permission"

    @classmethod
    def parse(cls, text: object, default: FlagKind | None = None) -> FlagKind:
        """A vendor's type name ("kill-switch", "killswitch", "ops", "Permission") as a kind.

        Vendors spell these differently and some have none; an unknown name becomes
        `default` (release, the commonest) rather than an error, so one odd flag never
        hides the others.
        """
        raw = str(text or "").strip().lower().replace("_", "-").replace(" ", "-")
        aliases = {
            "killswitch": cls.KILL_SWITCH, "kill": cls.KILL_SWITCH,
            "ops": cls.OPERATIONAL, "operations": cls.OPERATIONAL,
            "experimentation": cls.EXPERIMENT, "ab": cls.EXPERIMENT,
        }
        if raw in aliases:
            return aliases[raw]
        try:
            return cls(raw)
        except ValueError:
            return default if default is not None else cls.RELEASE


@dataclass(frozen=True)
class Segment:
    """Who a flag is on for whatever its percentage: users whose `attribute` is one of
    `values` ("userId" in [alice, bob]; "plan" in [beta]; "country" in [DE, FR]).

    The attribute is the evaluation context's key as the application sends it (flagd,
    OpenFeature), an Unleash context field or a LaunchDarkly/Split attribute; user ids
    are the context's targeting key (`key` in LaunchDarkly, the user id in Split).
    """

    attribute: str
    values: tuple[str, ...]

    def text(self) -> str:
        """'plan = beta', 'country in DE, FR'."""
        if len(self.values) == 1:
            return f"{self.attribute} = {self.values[0]}"
        return f"{self.attribute} in {', '.join(self.values)}"

    def same(self, other: Segment) -> bool:
        return self.attribute == other.attribute and set(self.values) == set(other.values)


@dataclass(frozen=True)
class Flag:
    key: str
    kind: FlagKind
    enabled: bool
    rollout: int | None = None  # percent, where the flag has a percentage rollout
    owner: str = ""
    description: str = ""
    in_release: bool = False
    # Times are seconds since the epoch; None where the provider does not say.
    created: float | None = None
    last_changed: float | None = None
    expires: float | None = None  # an explicit expiry date set on the flag
    environment: str = ""  # the environment whose state `enabled`/`rollout` describe
    stale: bool = False  # the provider itself marks the flag stale (Unleash)
    # Cohorts the flag is on for besides its rollout, as the provider reads them back;
    # None where the provider does not read targeting.
    segments: tuple[Segment, ...] | None = None

    @property
    def killed(self) -> bool:
        """A kill switch serves 'off' to everyone: the flag is simply disabled."""
        return not self.enabled

    @property
    def fully_on(self) -> bool:
        """Served to everyone: on, with no rollout or a 100% one (a candidate for removal)."""
        return self.enabled and (self.rollout is None or self.rollout >= 100)

    def age(self, now: float) -> float | None:
        """Seconds since the flag was created, where the provider knows."""
        return None if self.created is None else max(0.0, now - self.created)


DAY = 86400.0


@dataclass(frozen=True)
class FlagAuditPolicy:
    """What `relconsole flags --audit` (and the console's audit marker) hold flags to.

    Lifetimes are Unleash's defaults: release and experiment flags 40 days, operational
    7 days, kill switches and permissions are meant to live for ever (None).
    """

    lifetime_days: tuple[tuple[FlagKind, float | None], ...] = (
        (FlagKind.RELEASE, 40.0),
        (FlagKind.EXPERIMENT, 40.0),
        (FlagKind.OPERATIONAL, 7.0),
        (FlagKind.KILL_SWITCH, None),
        (FlagKind.PERMISSION, None),
    )
    stale_full_on_days: float = 14.0
    naming: str = r"^[a-z0-9]+-[a-z0-9-]+-(release|experiment|ops|permission|killswitch)$"

    def lifetime(self, kind: FlagKind) -> float | None:
        """Expected lifetime in days for a kind; None means it never expires."""
        return dict(self.lifetime_days).get(kind)


@dataclass(frozen=True)
class Actor:
    user: str
    host: str
    ssh_client: str | None = None
    on_behalf_of: str | None = None
    """Set for the engine's own actions: the lease holder it acts for. An automatic
    rollback is the engine's decision, and a postmortem must not blame the person at
    the console for it."""

    @classmethod
    def engine_for(cls, holder: Actor) -> Actor:
        """The engine acting on its own rules (gates, bakes, retries) for `holder`."""
        return cls(user=ENGINE_USER, host=holder.host, on_behalf_of=f"{holder.user}@{holder.host}")

    def __str__(self) -> str:
        if self.on_behalf_of:
            return f"{ENGINE_USER} (for {self.on_behalf_of})"
        base = f"{self.user}@{self.host}"
        return f"{base} (ssh from {self.ssh_client})" if self.ssh_client else base


ENGINE_USER = "engine"


def actor_text(raw: object, *, ssh: bool = False) -> str:
    """Who a journal record names, as every surface writes it: 'alice@bastion-1', or
    'engine (for alice@bastion-1)' for an automatic action. '?' when unreadable."""
    if not isinstance(raw, Mapping):
        return "?" if raw is None else str(raw)
    behalf = raw.get("on_behalf_of")
    if behalf:
        return f"{ENGINE_USER} (for {behalf})"
    who = f"{raw.get('user', '?')}@{raw.get('host', '?')}"
    if ssh and raw.get("ssh_client"):
        return f"{who} (ssh from {raw['ssh_client']})"
    return who


@dataclass(frozen=True)
class Contact:
    """An owner or stakeholder of a release (`release.owners` / `release.stakeholders`)."""

    name: str
    slack: str = ""  # a channel (#payments-oncall) or a handle (@alice)
    email: str = ""
    pager: str = ""  # the pager service or rotation that pages them

    def reach(self) -> str:
        """Where to reach them, in one phrase: 'slack @alice · pager payments-oncall'."""
        ways = [f"{kind} {value}" for kind, value in
                (("slack", self.slack), ("email", self.email), ("pager", self.pager)) if value]
        return " · ".join(ways)


@dataclass(frozen=True)
class ApiChange:
    name: str
    breaking: bool = False


@dataclass(frozen=True)
class Dependency:
    """A service that must already be deployed, and the probe that says it is healthy:
    exactly one of `http` (a URL to GET) and `promql` (an expression that must return a
    non-empty, non-zero result; `{{version}}` in it stands for `version`)."""

    name: str
    http: str = ""
    promql: str = ""
    version: str = ""  # the version it must run, where one is expected

    @property
    def probe(self) -> str:
        if self.http:
            return f"GET {self.http} answers 2xx" + (
                f" naming {self.version}" if self.version else "")
        return f"PromQL {self.query} returns a non-zero result"

    @property
    def query(self) -> str:
        return self.promql.replace("{{version}}", self.version)


@dataclass(frozen=True)
class ReleaseChanges:
    """What the release changes besides its code (`release.changes`)."""

    api: tuple[ApiChange, ...] = ()
    infrastructure: tuple[str, ...] = ()
    dependencies: tuple[Dependency, ...] = ()

    @property
    def breaking(self) -> tuple[ApiChange, ...]:
        return tuple(change for change in self.api if change.breaking)


EXPAND = "expand"  # a migration's phase: before the first traffic step
CONTRACT = "contract"  # after promotion and `contract_after`, never while rollback is possible


@dataclass(frozen=True)
class Migration:
    """One database migration of the release (`release.migrations`): argv lists, run
    without a shell. `check` verifies `up` (exit 0); `down` is only ever offered after a
    rollback and run when an operator asks (`relconsole migrate down NAME`)."""

    name: str
    phase: str  # EXPAND or CONTRACT
    up: tuple[str, ...]
    down: tuple[str, ...]
    check: tuple[str, ...]
    timeout: float = 300.0  # real seconds per command; a run past it is killed

    @property
    def expand(self) -> bool:
        return self.phase == EXPAND


@dataclass(frozen=True)
class ReleasePlan:
    """What the engine needs to know about the release, independent of the YAML."""

    service: str
    version: str
    environment: str
    strategy: str
    steps: tuple[Step, ...]
    auto_advance: bool = False
    auto_rollback: bool = True
    poll_interval: float = 5.0
    stale_after: float | None = None  # default: three poll intervals
    call_timeout: float = 5.0
    metrics: tuple[MetricSpec, ...] = ()
    gates: tuple[GateSpec, ...] = ()
    release_flags: tuple[str, ...] = ()
    baseline_version: str = ""
    rollback_retry_max: float = 30.0  # cap for the rollback retry backoff, seconds
    rollback_give_up: float = 600.0  # headless/one-shot: stop retrying after this long
    production: bool = field(default=False)
    # Rollback kills the release's flags (release_flags) first, then reverts traffic.
    kill_flags_on_rollback: bool = False
    flags_audit: FlagAuditPolicy = field(default_factory=FlagAuditPolicy)
    dashboard: str = ""  # release.dashboard, a link template like MetricSpec.dashboard
    canary_version: str = ""  # versions.canary where it differs from `version`
    # When it may start and advance by itself (windows, freezes); unset: always.
    schedule: Schedule = field(default_factory=Schedule)
    owners: tuple[Contact, ...] = ()
    stakeholders: tuple[Contact, ...] = ()
    changes: ReleaseChanges = field(default_factory=ReleaseChanges)
    migrations: tuple[Migration, ...] = ()  # in the order they run
    contract_after: float = 3600.0  # seconds after promotion before a contract migration
    cohorts: tuple[Cohort, ...] = ()  # release.cohorts (strategy ab)
    batch: int = 0  # rolling: servers per batch (release.rolling.batch as a count)
    batch_share: float = 0.0  # rolling: or a share of the servers, 0..1
    batch_bake: float = 0.0  # rolling: the gates' bake after each batch

    def cohort(self, name: str) -> Cohort | None:
        return next((c for c in self.cohorts if c.name == name), None)

    @property
    def routed(self) -> bool:
        """Whether the strategy routes by more than a weight (`Route`, `set_route`)."""
        return self.strategy in ROUTED_STRATEGIES

    @property
    def canary(self) -> str:
        """The version the canary's series carry: what `{{version}}` stands for."""
        return self.canary_version or self.version

    @property
    def release_id(self) -> str:
        raw = f"{self.service}-{self.version}-{self.environment}"
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in raw)

    @property
    def effective_stale_after(self) -> float:
        return self.stale_after if self.stale_after is not None else 3 * self.poll_interval

    def step_for_weight(self, weight: int) -> int:
        """Index of the step a live weight corresponds to; -1 before the first step."""
        index = -1
        for i, step in enumerate(self.steps):
            if step.weight <= weight:
                index = i
        return index
