"""What the engine tells its front ends: a snapshot of the release and discrete events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relconsole.flags_audit import Finding, audit, findings_by_key
from relconsole.model import Flag, GateStatus, Mode, Phase, ReleasePlan, Step, TrafficState


@dataclass(frozen=True)
class Series:
    """Recent values of one metric for the sparklines, oldest first (None = no data)."""

    canary: tuple[float | None, ...] = ()
    baseline: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class ProblemNote:
    """A provider that is failing or stale: what went wrong and since when."""

    source: str  # "metrics", "traffic", "flags"
    message: str
    since: float


@dataclass(frozen=True)
class Snapshot:
    plan: ReleasePlan
    now: float
    mode: Mode
    driver: str  # who holds the lease ("you" when this process drives)
    driver_since: float | None
    phase: Phase
    step_index: int  # -1 before the first step
    weight: int  # last weight read back from the traffic provider
    bake_elapsed: float
    pause_reason: str = ""
    ready_to_advance: bool = False  # bake over, gates green, waiting for a human
    gates: tuple[GateStatus, ...] = ()
    latest: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    traffic: TrafficState | None = None
    flags: tuple[Flag, ...] = ()
    problems: tuple[ProblemNote, ...] = ()
    rollback_attempts: int = 0
    rollback_next_at: float | None = None
    last_error: str = ""  # the last refused or failed action, for the status line

    @property
    def step(self) -> Step | None:
        if 0 <= self.step_index < len(self.plan.steps):
            return self.plan.steps[self.step_index]
        return None

    @property
    def bake_remaining(self) -> float:
        step = self.step
        if step is None:
            return 0.0
        return max(0.0, step.bake - self.bake_elapsed)

    def problem(self, source: str) -> ProblemNote | None:
        for p in self.problems:
            if p.source == source:
                return p
        return None

    def flag_findings(self) -> dict[str, tuple[Finding, ...]]:
        """Flag hygiene findings per flag key (flags without findings are absent).

        What `relconsole flags --audit` reports, judged at this snapshot's time against
        the release's audit policy; `flags_audit.marker()` turns a flag's findings into
        a short marker for the flags panel.
        """
        return findings_by_key(audit(self.flags, self.plan.flags_audit, self.now))


@dataclass(frozen=True)
class Event:
    """Something that happened, as one line for the journal panel and the headless log."""

    at: float
    kind: str  # step, verdict, pause, resume, rollback, promoted, refused, error, flag, ...
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    actor: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "kind": self.kind,
            "message": self.message,
            "actor": self.actor,
            **self.data,
        }
