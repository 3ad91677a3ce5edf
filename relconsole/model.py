"""Domain values shared by every layer: steps, readings, verdicts, phases, flags.

Everything here is an immutable value with no I/O, so the engine, the providers and both
front ends can pass them around freely.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from relconsole import units


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


@dataclass(frozen=True)
class Step:
    weight: int  # percent of traffic on the canary, 0..100
    bake: float = 0.0  # seconds to stay at this weight before advancing


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
class MetricSpec:
    name: str
    query: str = ""
    unit: str = ""  # "ratio" (shown as %), "seconds" (shown as ms), or free text
    dashboard: str = ""  # a link template; may hold {{version}} and {{baseline}}


@dataclass(frozen=True)
class GateSpec:
    metric: str
    max: float | None = None
    min: float | None = None
    max_increase: float | None = None  # canary - baseline must not exceed this
    max_ratio: float | None = None  # canary / baseline must not exceed this
    failure_limit: int = 1  # consecutive failing polls before the gate trips
    inconclusive_limit: int = 6  # consecutive inconclusive polls before the release pauses

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
        if self.max_increase is not None:
            parts.append(f"Δ≤{value_text(self.max_increase)}")
        if self.max_ratio is not None:
            parts.append(f"×≤{self.max_ratio:g}")
        return " ".join(parts) or "—"


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

    @property
    def name(self) -> str:
        return self.spec.metric

    @property
    def tripped(self) -> bool:
        return self.consecutive_failures >= self.spec.failure_limit

    def as_dict(self) -> dict[str, object]:
        return {
            "gate": self.name,
            "verdict": self.verdict.value,
            "canary": self.canary,
            "baseline": self.baseline,
            "unit": self.unit,
            "threshold": units.threshold(self.spec, self.unit),
            "consecutive_failures": self.consecutive_failures,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ServerHealth:
    name: str
    role: Role
    up: bool
    detail: str = ""


@dataclass(frozen=True)
class TrafficState:
    canary_weight: int
    servers: tuple[ServerHealth, ...] = ()

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
